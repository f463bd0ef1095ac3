#!/usr/bin/env bash
# analysis-fetch.sh: copy the case's memory image from the evidence bucket
# onto the analysis instance and check it against the SHA-256 the case
# records. Run by the Responder-AnalysisFetch document (forensics account),
# after responder-common.sh, with the instance profile's credentials (which
# read only cases/<case-id>/ of the evidence bucket).
#
# Input (environment):
#   RESPONDER_CASE_ID    the case; the key must lie under cases/<case-id>/
#   RESPONDER_BUCKET     the evidence bucket
#   RESPONDER_KEY        the image's key
#   RESPONDER_SHA256     the SHA-256 the case records for the stored object
#   RESPONDER_ENCODING   none, zstd or gzip: the image is also decoded
#   RESPONDER_DEST       /analysis/NAME: where it goes (made 0700)
#
# Output: one JSON line, schema responder.analysis-fetch/1. Exit status 0
# only when the copy's SHA-256 equals RESPONDER_SHA256.
# shellcheck shell=bash

af_schema=responder.analysis-fetch/1

af_fail() {
	rc_json_q "$1"
	printf '{"schema":"%s","status":"failed","error":%s}\n' "$af_schema" "$REPLY"
	exit 1
}

af_main() {
	set -uo pipefail
	export LC_ALL=C
	umask 077
	local file sum decoded='' out
	rc_valid_case_id "${RESPONDER_CASE_ID:-}" || af_fail "invalid case ID"
	[[ ${RESPONDER_BUCKET:-} =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] || af_fail "invalid bucket"
	[[ ${RESPONDER_KEY:-} == "cases/$RESPONDER_CASE_ID/"* && $RESPONDER_KEY =~ ^[A-Za-z0-9._/-]+$ && $RESPONDER_KEY != *..* ]] ||
		af_fail "the key is not under cases/$RESPONDER_CASE_ID/"
	[[ ${RESPONDER_SHA256:-} =~ ^[a-f0-9]{64}$ ]] || af_fail "invalid SHA-256"
	[[ ${RESPONDER_ENCODING:-} =~ ^(none|zstd|gzip)$ ]] || af_fail "invalid encoding"
	[[ ${RESPONDER_DEST:-} =~ ^/analysis/[a-z0-9-]{1,32}$ ]] || af_fail "invalid destination"
	rc_have aws || af_fail "aws CLI not found on the analysis image"
	if ! mkdir -p -- "$RESPONDER_DEST" || ! chmod 0700 -- "$RESPONDER_DEST"; then
		af_fail "cannot make $RESPONDER_DEST"
	fi
	file=$RESPONDER_DEST/memory-image
	if ! out=$(aws s3 cp --only-show-errors "s3://$RESPONDER_BUCKET/$RESPONDER_KEY" "$file" 2>&1); then
		af_fail "download failed: $out"
	fi
	sum=$(rc_sha256 <"$file")
	chmod 0400 -- "$file"
	case $RESPONDER_ENCODING in
	zstd) rc_have zstd && zstd -dq -o "$RESPONDER_DEST/memory.lime" -- "$file" && decoded=$RESPONDER_DEST/memory.lime ;;
	gzip) gzip -dc -- "$file" >"$RESPONDER_DEST/memory.lime" && decoded=$RESPONDER_DEST/memory.lime ;;
	none) decoded=$file ;;
	esac
	local status=ok matches=true
	if [[ $sum != "$RESPONDER_SHA256" ]]; then
		status=failed matches=false
	fi
	rc_json_q "$decoded"
	printf '{"schema":"%s","status":"%s","path":"%s","sha256":"%s","matches":%s,"decoded_path":%s}\n' \
		"$af_schema" "$status" "$file" "$sum" "$matches" "$REPLY"
	[[ $status == ok ]]
}

af_main "$@"
