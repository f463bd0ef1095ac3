#!/usr/bin/env bash
# responder-common.sh: helpers shared by the Linux collection scripts.
#
# Sourced by the scripts beside it when they run from this directory; the SSM
# documents embed it ahead of them instead (see ../README.md). It only defines
# functions and defaults; it runs nothing.
#
# Rules every caller keeps:
#   * a presigned URL is never printed, logged or passed on a command line:
#     it reaches curl through a config on stdin (curl -K -), so it does not
#     show in /proc/<pid>/cmdline of the instance either;
#   * every value from the document is validated again here before use.
# shellcheck shell=bash
# shellcheck disable=SC2034 # RC_* results are read by the callers

: "${RC_PUT_ATTEMPTS:=5}"      # attempts of one PUT by our own loop
: "${RC_CURL_RETRY:=2}"        # curl --retry inside each attempt (transient errors)
: "${RC_RETRY_SLEEP:=2}"       # seconds before the second attempt; doubles up to 30
: "${RC_CONNECT_TIMEOUT:=20}"  # seconds to connect
: "${RC_SPEED_TIME:=120}"      # abort a transfer slower than 1 KiB/s for this long

rc_have() { command -v "$1" >/dev/null 2>&1; }

# rc_now prints the current UTC time as RFC 3339.
rc_now() { date -u +%Y-%m-%dT%H:%M:%SZ; }

# rc_json_q VALUE sets REPLY to VALUE as a JSON string literal. Control
# characters are escaped; bytes >= 0x80 pass through (UTF-8 stays readable).
# It sets a variable instead of printing so that loops do not fork.
rc_json_q() {
	local s=$1 c out=''
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	s=${s//$'\n'/\\n}
	s=${s//$'\r'/\\r}
	s=${s//$'\t'/\\t}
	if [[ $s == *[$'\001'-$'\037']* ]]; then
		while [[ -n $s ]]; do
			c=${s:0:1}
			s=${s:1}
			case $c in
			[$'\001'-$'\037']) printf -v c '\\u%04x' "'$c" ;;
			esac
			out+=$c
		done
		s=$out
	fi
	REPLY="\"$s\""
}

# rc_json_num VALUE sets REPLY to VALUE when it is an integer, else to null.
rc_json_num() {
	if [[ $1 =~ ^-?[0-9]+$ ]]; then REPLY=$1; else REPLY=null; fi
}

# rc_sha256 hashes stdin and prints the lowercase hex digest. openssl uses the
# CPU's SHA extensions where it has them and is several times faster than
# coreutils' sha256sum, so it is preferred when present.
rc_sha256() {
	local out
	if rc_have openssl; then
		out=$(openssl dgst -sha256 -r) || return 1
	else
		out=$(sha256sum) || return 1
	fi
	out=${out%% *}
	[[ $out =~ ^[a-f0-9]{64}$ ]] || return 1
	printf '%s\n' "$out"
}

# rc_md5_b64 FILE prints the base64 MD5 digest of FILE (the Content-MD5 header
# value S3 checks, and requires on buckets with Object Lock).
rc_md5_b64() {
	local hex
	hex=$(md5sum <"$1") || return 1
	hex=${hex%% *}
	[[ $hex =~ ^[a-f0-9]{32}$ ]] || return 1
	# shellcheck disable=SC2059 # the format is the escaped digest, built here
	printf "$(printf '%s' "$hex" | sed 's/../\\x&/g')" | base64
}

# Validators for values that came through document parameters.
# The URL pattern is the one in the documents' allowedPattern: the characters
# of a presigned S3 URL and nothing a shell gives meaning to inside quotes.
RC_URL_RE='^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/[A-Za-z0-9._~/?&=%-]*$'
rc_valid_url() { [[ $1 =~ $RC_URL_RE ]]; }
rc_valid_sha256() { [[ $1 =~ ^[a-f0-9]{64}$ ]]; }
rc_valid_case_id() { [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ ]]; }

# rc_workdir [BYTES] creates a private working directory with at least BYTES
# free, preferring memory-backed file systems so that nothing is written to
# the suspect's disks, and sets RC_WORK and RC_WORK_ON_DISK (0 or 1).
rc_workdir() {
	local d need=${1:-0} avail
	for d in "${RESPONDER_WORK_PARENT:-}" /dev/shm /run /tmp; do
		[[ -n $d && -d $d && -w $d ]] || continue
		avail=$(stat -f -c '%a %S' -- "$d" 2>/dev/null) || continue
		(($(("${avail% *}" * "${avail#* }")) >= need)) || continue
		RC_WORK=$(mktemp -d "$d/responder.XXXXXXXX" 2>/dev/null) || continue
		RC_WORK_ON_DISK=1
		if [[ $(stat -f -c %T "$RC_WORK" 2>/dev/null) == tmpfs ]]; then RC_WORK_ON_DISK=0; fi
		return 0
	done
	return 1
}

# Sealing keys (see ../README.md, "Sealed parameters"): a key is made for one
# command by the Responder-LinuxSealingKey document, in a private directory
# named after its ID under the first of these parents that is writable
# (memory-backed first), and deleted by the command that opens its
# parameters.
rc_key_parents() { printf '%s\n' "${RESPONDER_WORK_PARENT:-}" /dev/shm /run /tmp; }
RC_KEY_PREFIX=responder-key-

# rc_key_dir ID sets RC_KEY_DIR to the directory of key ID: a directory,
# not a link, owned by us. Returns non-zero when there is none.
rc_key_dir() {
	local d
	RC_KEY_DIR=''
	while IFS= read -r d; do
		[[ -n $d ]] || continue
		d=$d/$RC_KEY_PREFIX$1
		if [[ -d $d && ! -L $d && -O $d && -f $d/key.pem ]]; then
			RC_KEY_DIR=$d
			return 0
		fi
	done < <(rc_key_parents)
	return 1
}

# rc_sealed reports whether the command's parameters came sealed (always,
# from a document; a script run by hand takes its variables in clear).
rc_sealed() { [[ -n ${RESPONDER_SEALED:-}${RESPONDER_SEALING_KEY_ID:-} ]]; }

# rc_unseal opens the command's sealed parameters: RESPONDER_SEALED,
# encrypted to the key RESPONDER_SEALING_KEY_ID, holds gzipped "NAME=value"
# lines;
# each NAME must be one of RESPONDER_SEALED_VARS and is set and exported.
# The key is deleted whatever happens: it opens one command's parameters,
# once. Decryption reads the key from its file and the ciphertext from a
# pipe, so neither the key nor a URL is ever on a command line. Sets RC_ERR
# and returns non-zero on failure.
rc_unseal() {
	local id=${RESPONDER_SEALING_KEY_ID:-} sealed=${RESPONDER_SEALED:-} chunk line name value plain
	local -a chunks
	RC_ERR=''
	[[ $id =~ ^[a-f0-9]{32}$ ]] || { RC_ERR="sealed parameters: invalid sealing key ID"; return 1; }
	if ! rc_key_dir "$id"; then
		RC_ERR="sealed parameters: sealing key $id is not on this instance (the sealing-key command did not run, or the instance restarted)"
		return 1
	fi
	plain=$RC_KEY_DIR/plain
	if [[ ! $sealed =~ ^rs1(\.[A-Za-z0-9+/]+={0,2})+$ ]]; then
		RC_ERR="sealed parameters: malformed"
	elif ! rc_have openssl || ! rc_have gzip; then
		RC_ERR="sealed parameters: openssl or gzip not found"
	else
		IFS=. read -r -a chunks <<<"${sealed#rs1.}"
		: >"$plain"
		for chunk in "${chunks[@]}"; do
			if ! printf '%s' "$chunk" | openssl base64 -d -A 2>/dev/null |
				openssl pkeyutl -decrypt -inkey "$RC_KEY_DIR/key.pem" -pkeyopt rsa_padding_mode:oaep \
					-pkeyopt rsa_oaep_md:sha256 >>"$plain" 2>/dev/null; then
				RC_ERR="sealed parameters: decryption failed"
				break
			fi
		done
	fi
	if [[ -z $RC_ERR ]] && ! gzip -dc <"$plain" >"$plain.txt" 2>/dev/null; then
		RC_ERR="sealed parameters: not gzip"
	fi
	while [[ -z $RC_ERR ]] && IFS= read -r line; do
		name=${line%%=*} value=${line#*=}
		if [[ $line != *=* || " ${RESPONDER_SEALED_VARS:-} " != *" $name "* ]]; then
			RC_ERR="sealed parameters: an unknown name"
			break
		fi
		printf -v "$name" '%s' "$value"
		export "${name?}"
	done <"$plain.txt"
	rm -rf -- "$RC_KEY_DIR"
	unset RESPONDER_SEALED
	[[ -z $RC_ERR ]]
}

# rc_curl_config URL prints a curl config that carries URL (read by curl -K -).
rc_curl_config() { printf 'url = "%s"\n' "$1"; }

# rc_get URL OUT downloads URL to OUT. Sets RC_HTTP; returns non-zero on failure.
rc_get() {
	local url=$1 out=$2 rc=0
	RC_HTTP=000
	RC_HTTP=$(rc_curl_config "$url" | curl -K - -sS -o "$out" -w '%{http_code}' \
		--proto =https --proto-redir =https --connect-timeout "$RC_CONNECT_TIMEOUT" \
		--retry "$RC_CURL_RETRY" --retry-delay 1 --speed-limit 1024 --speed-time "$RC_SPEED_TIME" \
		2>/dev/null) || rc=$?
	[[ $rc == 0 && $RC_HTTP == 200 ]]
}

# rc_put URL FILE [CONTENT_TYPE [CONTENT_MD5]] uploads FILE with a Content-MD5
# header (computed here unless given), in a bounded loop of attempts (curl
# also retries transient errors inside each).
# Sets RC_HTTP, RC_CURL_RC, RC_ATTEMPTS, RC_ETAG and RC_MD5; returns non-zero
# when no attempt got a 200 with an ETag.
rc_put() {
	local url=$1 file=$2 ctype=${3:-application/octet-stream} hdr delay=$RC_RETRY_SLEEP
	hdr=$(mktemp "${file}.hdr.XXXXXX") || return 1
	RC_ETAG='' RC_HTTP=000 RC_CURL_RC=0 RC_ATTEMPTS=0
	RC_MD5=${4:-}
	[[ $RC_MD5 =~ ^[A-Za-z0-9+/]{22}==$ ]] || RC_MD5=$(rc_md5_b64 "$file") || RC_MD5=''
	while ((RC_ATTEMPTS < RC_PUT_ATTEMPTS)); do
		RC_ATTEMPTS=$((RC_ATTEMPTS + 1))
		RC_CURL_RC=0
		# The body goes to a file, not /dev/null: on a retry curl truncates the
		# output, which fails on /dev/null (curl exit 23) when there was a body.
		RC_HTTP=$(rc_curl_config "$url" | curl -K - -sS -o "$hdr.body" -D "$hdr" -w '%{http_code}' \
			--proto =https --proto-redir =https -T "$file" -H "Content-Type: $ctype" \
			${RC_MD5:+-H "Content-MD5: $RC_MD5"} --connect-timeout "$RC_CONNECT_TIMEOUT" \
			--retry "$RC_CURL_RETRY" --retry-delay 1 --speed-limit 1024 --speed-time "$RC_SPEED_TIME" \
			2>/dev/null) || RC_CURL_RC=$?
		if [[ $RC_CURL_RC == 0 && $RC_HTTP == 200 ]]; then
			RC_ETAG=$(tr -d '\r' <"$hdr" | awk 'tolower($1) == "etag:" { e = $2 } END { print e }')
			[[ -n $RC_ETAG ]] && break
		fi
		# Errors a retry cannot fix: expired or wrong signature, missing upload.
		case $RC_HTTP in 403 | 404 | 405 | 411 | 413) break ;; esac
		if ((RC_ATTEMPTS < RC_PUT_ATTEMPTS)); then
			sleep "$delay"
			delay=$((delay * 2 > 30 ? 30 : delay * 2))
		fi
	done
	rm -f -- "$hdr" "$hdr.body"
	[[ -n $RC_ETAG ]]
}

# rc_fetch_tool URL SHA256 DEST downloads a staged tool and checks it against
# the pinned digest before it may run. Sets RC_ERR on failure.
rc_fetch_tool() {
	local url=$1 want=$2 dest=$3 got
	RC_ERR=''
	if ! rc_valid_url "$url"; then RC_ERR="download URL is not a valid https URL"; return 1; fi
	if ! rc_valid_sha256 "$want"; then RC_ERR="no valid pinned SHA-256"; return 1; fi
	if ! rc_get "$url" "$dest"; then RC_ERR="download failed (HTTP $RC_HTTP)"; rm -f -- "$dest"; return 1; fi
	got=$(rc_sha256 <"$dest") || got=''
	if [[ $got != "$want" ]]; then
		RC_ERR="SHA-256 mismatch: got ${got:-none}, pinned $want"
		rm -f -- "$dest"
		return 1
	fi
	chmod 0700 -- "$dest"
}

# rc_host_json sets REPLY to a JSON object describing the instance.
rc_host_json() {
	local name kernel arch pretty=unknown boot_id='' mem=0 k v _
	name=$(hostname 2>/dev/null || cat /proc/sys/kernel/hostname)
	kernel=$(uname -r)
	arch=$(uname -m)
	if [[ -r /etc/os-release ]]; then
		pretty=$(. /etc/os-release 2>/dev/null && printf '%s' "${PRETTY_NAME:-${NAME:-unknown}}")
	fi
	[[ -r /proc/sys/kernel/random/boot_id ]] && boot_id=$(</proc/sys/kernel/random/boot_id)
	while read -r k v _; do
		[[ $k == MemTotal: ]] && mem=$((v * 1024)) && break
	done </proc/meminfo
	local out="{"
	rc_json_q "$name" && out+="\"hostname\":$REPLY,"
	rc_json_q "$kernel" && out+="\"kernel\":$REPLY,"
	rc_json_q "$arch" && out+="\"arch\":$REPLY,"
	rc_json_q "$pretty" && out+="\"os\":$REPLY,"
	rc_json_q "$boot_id" && out+="\"boot_id\":$REPLY,"
	out+="\"mem_total_bytes\":$mem}"
	REPLY=$out
}

# rc_emit_report FULL_JSON SHORT_JSON RESULT_URL FILE writes FULL_JSON to FILE,
# uploads it through RESULT_URL and prints one JSON line on stdout: FULL_JSON
# when it fits in SSM's 24,000-character output window (kept under 20,000),
# SHORT_JSON otherwise. The upload outcome is added to what is printed.
rc_emit_report() {
	local full=$1 short=$2 url=$3 file=$4 upload
	printf '%s\n' "$full" >"$file"
	if [[ $url == none ]]; then
		upload='"result_upload":{"status":"skipped"}'
	elif rc_valid_url "$url" && rc_put "$url" "$file" application/json; then
		rc_json_q "$RC_ETAG"
		upload="\"result_upload\":{\"status\":\"succeeded\",\"etag\":$REPLY,\"attempts\":$RC_ATTEMPTS}"
	else
		upload="\"result_upload\":{\"status\":\"failed\",\"http_status\":\"${RC_HTTP:-000}\",\"attempts\":${RC_ATTEMPTS:-0}}"
	fi
	if ((${#full} <= 20000)); then
		printf '%s,%s}\n' "${full%\}}" "$upload"
	else
		printf '%s,%s,"stdout_truncated":true}\n' "${short%\}}" "$upload"
	fi
}
