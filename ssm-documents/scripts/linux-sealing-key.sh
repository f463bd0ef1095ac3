#!/usr/bin/env bash
# linux-sealing-key.sh: make the RSA key pair that seals the parameters of
# the next collection command, and print its public key. Run by the
# Responder-LinuxSealingKey document, after responder-common.sh.
#
# Input (environment):
#   RESPONDER_SEALING_KEY_ID   32 hex digits, chosen by the engine
#
# Output: one JSON line, schema responder.sealing-key/1, with the public key
# as base64 DER SubjectPublicKeyInfo. The private key stays in a private
# directory of a memory-backed file system when there is one (rc_key_parents)
# until the command that uses it deletes it; a key left unused for a day is
# removed by the next run. Exit status 0 only when the key was made.
# shellcheck shell=bash

sk_fail() {
	rc_json_q "$1"
	printf '{"schema":"responder.sealing-key/1","status":"failed","error":%s}\n' "$REPLY"
	exit 1
}

# sk_expire removes keys left unused for a day (their command never came).
sk_expire() {
	local d
	while IFS= read -r d; do
		[[ -n $d && -d $d ]] || continue
		find "$d" -maxdepth 1 -type d -name "$RC_KEY_PREFIX*" -user "$(id -u)" -mmin +1440 \
			-exec rm -rf -- {} + 2>/dev/null
	done < <(rc_key_parents)
}

sk_main() {
	set -uo pipefail
	export LC_ALL=C
	umask 077
	local id=${RESPONDER_SEALING_KEY_ID:-} d dir='' spki
	[[ $id =~ ^[a-f0-9]{32}$ ]] || sk_fail "invalid sealing key ID"
	rc_have openssl || sk_fail "openssl not found: this instance cannot open sealed parameters"
	sk_expire
	while IFS= read -r d; do
		[[ -n $d && -d $d && -w $d ]] || continue
		# mkdir fails on an existing name: a key is never reused or planted.
		if mkdir -m 0700 -- "$d/$RC_KEY_PREFIX$id" 2>/dev/null; then
			dir=$d/$RC_KEY_PREFIX$id
			break
		fi
	done < <(rc_key_parents)
	[[ -n $dir ]] || sk_fail "no writable directory for the key"
	if ! openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out "$dir/key.pem" 2>/dev/null; then
		rm -rf -- "$dir"
		sk_fail "key generation failed"
	fi
	if ! spki=$(openssl pkey -in "$dir/key.pem" -pubout -outform DER 2>/dev/null | openssl base64 -A) || [[ -z $spki ]]; then
		rm -rf -- "$dir"
		sk_fail "public key export failed"
	fi
	printf '{"schema":"responder.sealing-key/1","status":"succeeded","key_id":"%s","algorithm":"RSA-OAEP-SHA256","public_key":"%s"}\n' "$id" "$spki"
}

sk_main "$@"
