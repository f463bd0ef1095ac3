#!/usr/bin/env bash
# linux-memory-capture.sh: capture physical memory with AVML (default) or LiME
# and stream it, compressed and hashed, into an S3 multipart upload through
# presigned UploadPart URLs. Run by the Responder-LinuxMemoryCapture document,
# which embeds responder-common.sh and stream-upload.sh ahead of this file.
#
# Configuration (environment, set by the document from its parameters):
#   RESPONDER_CASE_ID           case identifier, only recorded
#   RESPONDER_TOOL              auto (AVML, then LiME) | avml | lime
#   RESPONDER_AVML_URL          presigned GET of the avml binary, or none
#   RESPONDER_AVML_SHA256       pinned SHA-256 of that binary, or none
#   RESPONDER_LIME_URL          presigned GET of lime.ko built for this exact kernel, or none
#   RESPONDER_LIME_SHA256       pinned SHA-256 of that module, or none
#   RESPONDER_LIME_TIMEOUT_MS   LiME slow-read timeout; 0 (default) disables it, so
#                               LiME never zero-fills a range because reads are slow
#   RESPONDER_PART_URLS_URL     presigned GET of a text object: line N is the
#                               presigned UploadPart URL of part N
#   RESPONDER_PART_SIZE_MIB     part size in MiB (5..5120)
#   RESPONDER_COMPRESSION       auto (zstd, else gzip) | zstd | gzip | none
#   RESPONDER_HASH_COMPRESSED   on (default) | off: whether the SHA-256 of the
#                               compressed stream is computed here too (off
#                               when the engine hashes the stored image)
#   RESPONDER_RESULT_URL        presigned PUT for the JSON report, or none
# The documents deliver the URLs sealed (RESPONDER_SEALING_KEY_ID,
# RESPONDER_SEALED, RESPONDER_SEALED_VARS), opened by rc_unseal; run by hand,
# the script takes them in clear.
# For tests only (the documents never set them): RESPONDER_IOMEM (default
# /proc/iomem) and RESPONDER_MEMORY_SOURCES (default "/dev/crash /proc/kcore /dev/mem").
#
# Output: one JSON line on stdout (the report, or its summary when the report
# is over 20,000 characters); the full report goes to RESPONDER_RESULT_URL.
# Exit status 0 only when an image was captured and every part uploaded.
# shellcheck shell=bash source-path=SCRIPTDIR

if [[ $(type -t su_stream_upload) != function ]]; then
	# shellcheck source=stream-upload.sh
	. "$(dirname -- "${BASH_SOURCE[0]}")/stream-upload.sh"
fi

MC_ATTEMPTS=()    # JSON objects, one per tool/source attempt
MC_WARNINGS=()    # JSON strings
MC_LIME_LOADED=0
MC_INSMOD_PID=''

mc_warn() { rc_json_q "$1"; MC_WARNINGS+=("$REPLY"); }

# mc_le64 HEX16 sets REPLY to the little-endian 64-bit value of HEX16.
mc_le64() {
	local h=$1 r='' i
	for ((i = 14; i >= 0; i -= 2)); do r+=${h:i:2}; done
	REPLY=$((16#$r))
}

# mc_lime_ranges reads a LiME-format image on stdin (the raw stream, through
# the tap of su_stream_upload) and prints "START END" (decimal, END inclusive)
# for every range header, or a final "error: ..." line. It reads to the end.
mc_lime_ranges() {
	local hdr s e len got
	while :; do
		hdr=$(dd bs=32 count=1 iflag=fullblock 2>/dev/null | od -An -v -tx1 | tr -d ' \n')
		[[ -z $hdr ]] && break
		if ((${#hdr} != 64)); then echo "error: truncated range header"; break; fi
		if [[ ${hdr:0:8} != 454d694c ]]; then echo "error: not LiME format"; break; fi
		if [[ ${hdr:8:8} != 01000000 ]]; then echo "error: unsupported LiME header version"; break; fi
		mc_le64 "${hdr:16:16}"; s=$REPLY
		mc_le64 "${hdr:32:16}"; e=$REPLY
		echo "$s $e"
		len=$((e - s + 1))
		got=$(dd bs=1M count="$len" iflag=count_bytes,fullblock of=/dev/null 2>&1 | awk '/bytes/ { print $1; exit }')
		if [[ $got != "$len" ]]; then echo "error: range body truncated"; break; fi
	done
	cat >/dev/null
}

# mc_iomem_ram prints "START END" (decimal) of the top-level System RAM ranges,
# or nothing when the addresses are hidden (not root).
mc_iomem_ram() {
	local line range s e
	while IFS='' read -r line; do
		[[ $line == [0-9a-f]*" : System RAM" ]] || continue
		range=${line%% *}
		s=$((16#${range%-*})) e=$((16#${range#*-}))
		((e > 0)) && echo "$s $e"
	done <"${RESPONDER_IOMEM:-/proc/iomem}"
}

mc_hex() { printf -v REPLY '0x%x' "$1"; }

# mc_ranges_json sets REPLY to the "ranges" object: what /proc/iomem calls
# System RAM, what the image holds (from its LiME headers), and the parts of
# System RAM the image does not hold.
mc_ranges_json() {
	local tap=$1 s e a b cur ram=() cap=() skipped=() x out sep
	local tap_error=''
	while read -r a b; do ram+=("$a $b"); done < <(mc_iomem_ram 2>/dev/null)
	if [[ -f $tap ]]; then
		while read -r a b; do
			if [[ $a == error: ]]; then tap_error=$b; continue; fi
			cap+=("$a $b")
		done <"$tap"
	fi
	# Subtract the captured ranges from System RAM (both ascending).
	for x in "${ram[@]}"; do
		read -r a b <<<"$x"
		cur=$a
		for s in "${cap[@]}"; do
			read -r s e <<<"$s"
			((e < cur)) && continue
			((s > b)) && break
			((s > cur)) && skipped+=("$cur $((s - 1))")
			cur=$((e + 1))
			((cur > b)) && break
		done
		((cur <= b)) && skipped+=("$cur $b")
	done
	out="{\"iomem_readable\":$([[ ${#ram[@]} -gt 0 ]] && echo true || echo false)"
	if [[ -n $tap_error ]]; then rc_json_q "$tap_error"; out+=",\"image_parse_error\":$REPLY"; fi
	local name list
	for name in system_ram captured skipped; do
		case $name in
		system_ram) list=("${ram[@]}") ;;
		captured) list=("${cap[@]}") ;;
		skipped) list=("${skipped[@]}") ;;
		esac
		out+=",\"$name\":["
		sep=''
		for x in "${list[@]}"; do
			read -r a b <<<"$x"
			mc_hex "$a"; s=$REPLY
			mc_hex "$b"; e=$REPLY
			out+="$sep{\"start\":\"$s\",\"end\":\"$e\",\"bytes\":$((b - a + 1))}"
			sep=,
		done
		out+="]"
	done
	if [[ ${#ram[@]} -gt 0 && ${#cap[@]} -gt 0 && ${#skipped[@]} -gt 0 ]]; then
		mc_warn "the image does not cover ${#skipped[@]} System RAM range(s); see ranges.skipped"
	fi
	REPLY="$out}"
}

# mc_avml_source BIN SOURCE writes an AVML image of SOURCE to stdout.
mc_avml_source() {
	local bin=$1 src=$2 sub=()
	# AVML releases take the image path directly; newer builds have subcommands.
	if "$bin" --help 2>&1 | grep -Eq '^[[:space:]]+acquire([[:space:]]|$)'; then sub=(acquire); fi
	"$bin" "${sub[@]}" --source "$src" /dev/stdout 2>>"$MC_WORK/tool.err"
}

# mc_lime_source PORT reads the image LiME serves on 127.0.0.1:PORT.
mc_lime_source() {
	local port=$1 i fd rc
	for ((i = 0; i < 300; i++)); do
		if { exec {fd}<"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
			cat <&"$fd"
			rc=$?
			exec {fd}<&-
			return "$rc"
		fi
		kill -0 "$MC_INSMOD_PID" 2>/dev/null || return 3
		sleep 0.2
	done
	return 4
}

# mc_attempt TOOL SOURCE -- COMMAND... runs one capture attempt into the
# multipart upload and records it. Returns 0 when it succeeded.
mc_attempt() {
	local tool=$1 src=$2 dir rc=0 out
	shift 3
	dir=$MC_WORK/attempt.$((${#MC_ATTEMPTS[@]} + 1))
	mkdir -p -- "$dir"
	: >"$MC_WORK/tool.err"
	SU_RAW_TAP=mc_lime_ranges su_stream_upload "$dir" "$MC_PART_SIZE" "$MC_WORK/part-urls" \
		"$RESPONDER_COMPRESSION" "$dir/stream.json" -- "$@" || rc=1
	if ((rc == 0 && SU_RAW_BYTES == 0)); then
		rc=1 SU_STATUS=failed SU_FAILURE=source
	fi
	out="{"
	rc_json_q "$tool" && out+="\"tool\":$REPLY,"
	rc_json_q "$src" && out+="\"source\":$REPLY,"
	out+="\"status\":\"$SU_STATUS\",\"failure\":\"$SU_FAILURE\",\"raw_bytes\":$SU_RAW_BYTES"
	rc_json_num "$SU_SOURCE_EXIT" && out+=",\"source_exit_status\":$REPLY"
	rc_json_q "$(tail -c 2000 -- "$MC_WORK/tool.err" 2>/dev/null)" && out+=",\"stderr_tail\":$REPLY}"
	MC_ATTEMPTS+=("$out")
	MC_LAST_DIR=$dir
	return "$rc"
}

mc_try_avml() {
	local bin=$MC_WORK/avml src
	if [[ $RESPONDER_AVML_URL == none ]]; then mc_warn "AVML not staged (AvmlUrl is none)"; return 1; fi
	if ! rc_fetch_tool "$RESPONDER_AVML_URL" "$RESPONDER_AVML_SHA256" "$bin"; then
		mc_warn "avml not run: $RC_ERR"
		return 1
	fi
	MC_AVML_VERSION=$("$bin" --version 2>/dev/null | head -n 1)
	# AVML's own order. A source that fails part-way is retried from the start
	# with the next one: the parts it uploaded are overwritten, and only the
	# parts of the successful attempt are reported.
	for src in ${RESPONDER_MEMORY_SOURCES:-/dev/crash /proc/kcore /dev/mem}; do
		[[ -e $src ]] || continue
		if mc_attempt avml "$src" -- mc_avml_source "$bin" "$src"; then
			MC_TOOL=avml MC_SOURCE=$src
			return 0
		fi
		# An upload failure will not get better with another memory source.
		[[ $SU_FAILURE == upload || $SU_FAILURE == exhausted || $SU_FAILURE == urls ]] && return 2
	done
	return 1
}

mc_try_lime() {
	local ko=$MC_WORK/lime.ko port vermagic have_timeout=1 rc
	if [[ $RESPONDER_LIME_URL == none ]]; then mc_warn "LiME not staged (LimeUrl is none)"; return 1; fi
	if ! rc_fetch_tool "$RESPONDER_LIME_URL" "$RESPONDER_LIME_SHA256" "$ko"; then
		mc_warn "LiME not loaded: $RC_ERR"
		return 1
	fi
	if rc_have modinfo; then
		vermagic=$(modinfo -F vermagic "$ko" 2>/dev/null)
		if [[ -n $vermagic && ${vermagic%% *} != "$(uname -r)" ]]; then
			mc_warn "LiME not loaded: module built for ${vermagic%% *}, running kernel is $(uname -r)"
			return 1
		fi
	fi
	if ! rc_have insmod; then mc_warn "LiME not loaded: insmod not found"; return 1; fi
	MC_DMESG_BEFORE=$(dmesg 2>/dev/null | wc -l)
	MC_LIME_TRIED=1
	for have_timeout in 1 0; do
		port=$((49152 + RANDOM % 16000))
		local args=("path=tcp:$port" format=lime localhostonly=1)
		((have_timeout)) && args+=("timeout=$RESPONDER_LIME_TIMEOUT_MS")
		insmod "$ko" "${args[@]}" 2>>"$MC_WORK/insmod.err" &
		MC_INSMOD_PID=$!
		MC_LIME_LOADED=1
		rc=0
		mc_attempt lime "tcp:127.0.0.1:$port" -- mc_lime_source "$port" || rc=1
		wait "$MC_INSMOD_PID"
		local insmod_rc=$?
		MC_INSMOD_PID=''
		rmmod lime 2>/dev/null && MC_LIME_LOADED=0
		if ((rc == 0 && insmod_rc == 0)); then
			MC_TOOL=lime MC_SOURCE="lime (System RAM from iomem_resource)"
			((have_timeout)) || mc_warn "this LiME build has no timeout parameter"
			return 0
		fi
		[[ $SU_FAILURE == upload || $SU_FAILURE == exhausted || $SU_FAILURE == urls ]] && return 2
		# Builds older than the timeout parameter refuse it: retry once without.
		grep -qiE 'unknown parameter|invalid parameters' "$MC_WORK/insmod.err" 2>/dev/null || break
	done
	return 1
}

# mc_lime_log_json sets REPLY to LiME's kernel log lines of this run (debug
# builds log ranges, short reads and skipped ranges) and records zero-filled
# ranges from them.
mc_lime_log_json() {
	local line range='' lines=() zero=() x sep='' out
	while IFS='' read -r line; do
		[[ $line == *"[LiME]"* ]] || continue
		lines+=("$line")
		if [[ $line =~ Writing\ range\ ([0-9a-fA-F]+)\ -\ ([0-9a-fA-F]+) ]]; then
			range="0x${BASH_REMATCH[1]}-0x${BASH_REMATCH[2]}"
		elif [[ $line == *"Skipping Range"* || $line == *"Null padding"* ]]; then
			zero+=("${range:-unknown}: ${line#*\[LiME\] }")
		fi
	done < <(dmesg 2>/dev/null | tail -n "+$((MC_DMESG_BEFORE + 1))")
	out="{\"debug_log_lines\":${#lines[@]},\"zero_filled\":["
	for x in "${zero[@]}"; do rc_json_q "$x"; out+="$sep$REPLY"; sep=,; done
	out+="],\"log_tail\":["
	sep=''
	local first=$((${#lines[@]} > 50 ? ${#lines[@]} - 50 : 0))
	for x in "${lines[@]:first}"; do rc_json_q "$x"; out+="$sep$REPLY"; sep=,; done
	out+="]}"
	if ((${#lines[@]} == 0 && RESPONDER_LIME_TIMEOUT_MS != 0)); then
		mc_warn "LiME logged nothing (not a debug build) and its slow-read timeout is on: zero-filled ranges cannot be detected"
	fi
	((${#zero[@]} > 0)) && mc_warn "LiME zero-filled ${#zero[@]} range(s) or page(s); see lime.zero_filled"
	REPLY=$out
}

mc_cleanup() {
	[[ -n $MC_INSMOD_PID ]] && kill "$MC_INSMOD_PID" 2>/dev/null
	((MC_LIME_LOADED)) && rmmod lime 2>/dev/null
	[[ -n ${MC_WORK:-} && -d $MC_WORK ]] && rm -rf -- "$MC_WORK"
}

mc_fail_early() {
	local full
	rc_json_q "$1"
	full="{\"schema\":\"responder.linux-memory-capture/1\",\"status\":\"failed\",\"error\":$REPLY}"
	rc_emit_report "$full" "$full" "${RESPONDER_RESULT_URL:-none}" "${MC_WORK:-/tmp}/report.json"
	exit 1
}

mc_main() {
	set -uo pipefail
	export LC_ALL=C
	umask 077
	local started status=failed err='' rc=1 v unsealed=''
	started=$(rc_now)
	# The URLs come sealed (rc_unseal); a failure is reported once the
	# working directory exists.
	if rc_sealed && ! rc_unseal; then unsealed=$RC_ERR; fi
	MC_TOOL='' MC_SOURCE='' MC_AVML_VERSION='' MC_LAST_DIR='' MC_DMESG_BEFORE=0 MC_LIME_TRIED=0
	: "${RESPONDER_TOOL:=auto}" "${RESPONDER_AVML_URL:=none}" "${RESPONDER_AVML_SHA256:=none}"
	: "${RESPONDER_LIME_URL:=none}" "${RESPONDER_LIME_SHA256:=none}" "${RESPONDER_LIME_TIMEOUT_MS:=0}"
	: "${RESPONDER_COMPRESSION:=auto}" "${RESPONDER_RESULT_URL:=none}" "${RESPONDER_CASE_ID:=}"
	: "${RESPONDER_PART_URLS_URL:=}" "${RESPONDER_PART_SIZE_MIB:=64}" "${RESPONDER_HASH_COMPRESSED:=on}"

	# Parts in flight plus the one being cut are buffered here.
	local need mib=${RESPONDER_PART_SIZE_MIB//[!0-9]/}
	mib=$((10#${mib:-64} > 5120 ? 5120 : 10#${mib:-64}))
	need=$(((${SU_MAX_INFLIGHT:-2} + 1) * mib * 1048576 + 64 * 1048576))
	rc_workdir "$need" || { MC_WORK=''; mc_fail_early "no writable working directory with $((need >> 20)) MiB free"; }
	MC_WORK=$RC_WORK
	trap mc_cleanup EXIT
	((RC_WORK_ON_DISK)) && mc_warn "parts are buffered on disk ($MC_WORK): no tmpfs was writable"
	[[ -z $unsealed ]] || mc_fail_early "$unsealed"

	rc_valid_case_id "$RESPONDER_CASE_ID" || mc_fail_early "invalid case ID"
	[[ $RESPONDER_TOOL =~ ^(auto|avml|lime)$ ]] || mc_fail_early "invalid tool"
	[[ $RESPONDER_COMPRESSION =~ ^(auto|zstd|gzip|none)$ ]] || mc_fail_early "invalid compression"
	[[ $RESPONDER_LIME_TIMEOUT_MS =~ ^[0-9]{1,6}$ ]] || mc_fail_early "invalid LiME timeout"
	[[ $RESPONDER_HASH_COMPRESSED =~ ^(on|off)$ ]] || mc_fail_early "invalid HashCompressed"
	SU_HASH_COMPRESSED=1
	[[ $RESPONDER_HASH_COMPRESSED == off ]] && SU_HASH_COMPRESSED=0
	if ! [[ $RESPONDER_PART_SIZE_MIB =~ ^[0-9]{1,4}$ ]] || ((RESPONDER_PART_SIZE_MIB < 5 || RESPONDER_PART_SIZE_MIB > 5120)); then
		mc_fail_early "part size must be 5 to 5120 MiB"
	fi
	for v in RESPONDER_AVML_URL RESPONDER_LIME_URL RESPONDER_RESULT_URL; do
		[[ ${!v} == none ]] || rc_valid_url "${!v}" || mc_fail_early "$v is not a valid https URL"
	done
	rc_valid_url "$RESPONDER_PART_URLS_URL" || mc_fail_early "RESPONDER_PART_URLS_URL is not a valid https URL"
	if [[ $EUID -ne 0 ]]; then mc_warn "not running as root: memory sources will be unreadable"; fi
	rc_have curl || mc_fail_early "curl not found"
	MC_PART_SIZE=$((RESPONDER_PART_SIZE_MIB * 1048576))
	if ! rc_get "$RESPONDER_PART_URLS_URL" "$MC_WORK/part-urls"; then
		mc_fail_early "could not download the part URL list (HTTP $RC_HTTP)"
	fi

	local r=1
	if [[ $RESPONDER_TOOL != lime ]]; then
		mc_try_avml
		r=$?
	fi
	if ((r == 1)) && [[ $RESPONDER_TOOL != avml ]]; then
		mc_try_lime
		r=$?
	fi
	if ((r == 0)); then
		status=succeeded rc=0
	elif ((${#MC_ATTEMPTS[@]} == 0)); then
		err="no capture tool could run"
	else
		err="capture failed; see attempts"
	fi

	# Assemble the report.
	local core big='' x sep='' stream='' ranges=''
	core="{\"schema\":\"responder.linux-memory-capture/1\""
	rc_json_q "$RESPONDER_CASE_ID" && core+=",\"case_id\":$REPLY,\"status\":\"$status\""
	[[ -n $err ]] && rc_json_q "$err" && core+=",\"error\":$REPLY"
	core+=",\"started_at\":\"$started\",\"finished_at\":\"$(rc_now)\""
	rc_host_json && core+=",\"instance\":$REPLY"
	rc_json_q "$MC_TOOL" && core+=",\"tool\":{\"name\":$REPLY"
	rc_json_q "$MC_SOURCE" && core+=",\"memory_source\":$REPLY"
	rc_json_q "$MC_AVML_VERSION" && core+=",\"avml_version\":$REPLY"
	if [[ $MC_TOOL == avml ]]; then rc_json_q "$RESPONDER_AVML_SHA256"; else rc_json_q "$RESPONDER_LIME_SHA256"; fi
	[[ -n $MC_TOOL ]] && core+=",\"sha256\":$REPLY"
	core+=",\"lime_timeout_ms\":$RESPONDER_LIME_TIMEOUT_MS},\"image_format\":\"lime\",\"attempts\":["
	for x in "${MC_ATTEMPTS[@]}"; do core+="$sep$x"; sep=,; done
	core+="]"
	if [[ -n $MC_LAST_DIR && -f $MC_LAST_DIR/stream.json ]]; then
		stream=$(<"$MC_LAST_DIR/stream.json")
		mc_ranges_json "$MC_LAST_DIR/tap.out"
		ranges=$REPLY
	fi
	if ((MC_LIME_TRIED)); then
		mc_lime_log_json && core+=",\"lime\":$REPLY"
	fi
	[[ -n $ranges ]] && core+=",\"ranges\":$ranges"
	core+=",\"warnings\":["
	sep=''
	for x in "${MC_WARNINGS[@]}"; do core+="$sep$x"; sep=,; done
	core+="]"
	if [[ -n $stream ]]; then
		# The summary keeps everything but the list of parts.
		big=",\"upload\":$stream"
		core+=",\"upload_summary\":${stream%%,\"parts\":*}}"
	fi
	rc_emit_report "$core$big}" "$core}" "$RESPONDER_RESULT_URL" "$MC_WORK/report.json"
	return "$rc"
}

mc_main "$@"
