#!/usr/bin/env bash
# stream-upload.sh: compress, hash and upload a byte stream as the parts of an
# S3 multipart upload, one presigned UploadPart URL per part, never holding
# more than a few parts in memory.
#
#   source | hashing tee: SHA-256 and byte count of the raw stream, optional raw tap
#          | compressor (zstd -1 --no-check: the SHA-256s and Content-MD5s make
#            zstd's own xxhash redundant; else gzip -1)
#          | cut into parts of PART_SIZE bytes, with each part's Content-MD5, the
#            byte count and (unless SU_HASH_COMPRESSED=0) the SHA-256 of the
#            compressed stream, each PUT to its URL (bounded retries,
#            Content-MD5), SU_MAX_INFLIGHT parts in flight at once
#
# With python3 installed, the raw tee and the splitter are short python
# programs (1 MiB buffers and pipes, one pass over each byte); without it,
# coreutils tee feeds fifos read by sha256 and wc, and dd and md5sum cut
# and hash the parts, at about half the speed (SU_HASHTEE=coreutils forces
# the fallback; the report names the one used).
#
# A part that cannot be uploaded, a source or compressor that exits non-zero,
# or a stream longer than the URLs provided ends the run as failed, naming the
# part; the report never describes a truncated stream as complete.
#
# Run directly (tests, benchmarks):
#   stream-upload.sh --part-size BYTES --part-urls FILE [--compression auto|zstd|gzip|none]
#                    [--work DIR] (--source FILE | -- COMMAND [ARG...])
# prints the report (JSON) on stdout and exits 0 on success, 1 on failure.
# Sourced (or embedded ahead of linux-memory-capture.sh), it defines su_*.
# shellcheck shell=bash source-path=SCRIPTDIR
# shellcheck disable=SC2034 # SU_* results are read by the callers

if [[ $(type -t rc_json_q) != function ]]; then
	# shellcheck source=responder-common.sh
	. "$(dirname -- "${BASH_SOURCE[0]}")/responder-common.sh"
fi

: "${SU_MAX_INFLIGHT:=2}"   # parts uploading while the next one is read
: "${SU_ZSTD_THREADS:=1}"   # zstd -T; 0 means one thread per core
# SU_HASH_COMPRESSED=0: the python splitter does not hash the compressed
# stream (compressed_sha256 is then empty; the coreutils fallback always
# hashes it). The engine asks for it only when it will not read the stored
# image back and hash it itself.
: "${SU_HASH_COMPRESSED:=1}"
: "${SU_HASHTEE:=auto}"     # auto (python3 when installed), python or coreutils
# SU_STAGE_CPU (benchmarks only): a directory where each stage of the
# pipeline appends its CPU time (bash "times") to a file named after it.

# SU_PY_HASHTEE copies stdin to stdout and to the file named by argv[2] (if
# any), and writes "SHA256 BYTES" to argv[1]. When stdin and stdout are
# pipes, tee(2) (through ctypes) duplicates what stdin holds into stdout
# without copying it, and the same bytes are then read from stdin for the
# hash: one copy of the stream instead of two. Else (a file, no ctypes) it
# reads and writes. One 1 MiB buffer is reused; pipes are grown to 1 MiB
# (fcntl 1031 is F_SETPIPE_SZ).
# (The python is indented with tabs: the document has to fit in 64 KB.)
# compact: off
SU_PY_HASHTEE='
import hashlib, os, sys
def grow(fd):
	try:
		import fcntl
		fcntl.fcntl(fd, 1031, 1 << 20)
	except Exception:
		pass
def pipetee():
	try:
		import ctypes as c, stat
		if not all(stat.S_ISFIFO(os.fstat(fd).st_mode) for fd in (0, 1)):
			return None
		f = c.CDLL(None, use_errno=True).tee
		f.restype, f.argtypes = c.c_ssize_t, [c.c_int, c.c_int, c.c_size_t, c.c_uint]
		def tee(k):
			while True:
				r = f(0, 1, k, 0)
				if r >= 0:
					return r
				if c.get_errno() != 4:  # EINTR: again
					raise OSError(c.get_errno(), "tee")
		return tee
	except Exception:
		return None
def write(fd, b):
	off = 0
	while off < len(b):
		off += os.write(fd, b[off:])
def main():
	tap = os.open(sys.argv[2], os.O_WRONLY) if len(sys.argv) > 2 else -1
	for fd in (0, 1, tap):
		grow(fd)
	h = hashlib.sha256()
	n = 0
	buf = bytearray(1 << 20)
	view = memoryview(buf)
	src = os.fdopen(0, "rb", 0)
	tee = pipetee()
	while True:
		want = tee(len(buf)) if tee else len(buf)
		k = 0
		while k < want:
			r = src.readinto(view[k:want])
			if not r:
				break
			k += r
			if not tee:
				break
		if tee and k != want:
			sys.exit("tee: short read")
		if not k:
			break
		chunk = view[:k]
		h.update(chunk)
		n += k
		if not tee:
			write(1, chunk)
		if tap >= 0:
			write(tap, chunk)
	with open(sys.argv[1], "w") as f:
		f.write("%s %d\n" % (h.hexdigest(), n))
main()
'
# compact: on

# SU_PY_SPLIT cuts stdin (the compressed stream) into parts of argv[3] bytes
# in the directory argv[2] in one pass, part N in the slot file s((N-1) mod
# argv[5]), overwritten in place (tmpfs keeps its pages: a new file per part
# costs allocating, zeroing and freeing them, about 0.1 CPU-s per GiB of
# memory, BENCHMARKS.md). Each chunk read is
# hashed for the part's Content-MD5 and for the whole stream's SHA-256 and
# written once, so no part is read again before its upload. For each part it
# prints "N SIZE CONTENT-MD5" on stdout when the part is complete. It cuts
# part N > argv[5] only after reading one byte from the fifo argv[4] (the
# caller writes one per part uploaded), so at most argv[5] parts are on disk
# at once. At the end it writes "SHA256 BYTES" of the stream to argv[1]
# ("- BYTES" when argv[6] is 0: the stream is not hashed).
# compact: off
SU_PY_SPLIT='
import base64, hashlib, os, sys
def main():
	out, parts, size, free = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[5])
	try:
		import fcntl
		fcntl.fcntl(0, 1031, 1 << 20)
	except Exception:
		pass
	tok = os.open(sys.argv[4], os.O_RDONLY)
	src = os.fdopen(0, "rb", 0)
	whole = hashlib.sha256() if sys.argv[6] != "0" else None
	buf = bytearray(1 << 20)
	view = memoryview(buf)
	n = total = 0
	while True:
		n += 1
		if n > free and not os.read(tok, 1):
			sys.exit(3)
		path = os.path.join(parts, "s%d" % ((n - 1) % free))
		fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
		md5 = hashlib.md5()
		got = 0
		while got < size:
			k = src.readinto(view[:min(len(buf), size - got)])
			if not k:
				break
			chunk = view[:k]
			md5.update(chunk)
			if whole:
				whole.update(chunk)
			off = 0
			while off < k:
				off += os.write(fd, chunk[off:])
			got += k
		os.ftruncate(fd, got)
		os.close(fd)
		if not got:
			os.unlink(path)
			break
		total += got
		os.write(1, b"%d %d %s\n" % (n, got, base64.b64encode(md5.digest())))
		if got < size:
			break
	with open(out, "w") as f:
		f.write("%s %d\n" % (whole.hexdigest() if whole else "-", total))
main()
'
# compact: on

# su_stage NAME COMMAND... runs COMMAND and, when SU_STAGE_CPU names a
# directory, appends the CPU time of this (sub)shell and its children to
# SU_STAGE_CPU/NAME. Called as a stage of a pipeline or a background job.
su_stage() {
	local name=$1 rc=0
	shift
	"$@" || rc=$?
	[[ -n ${SU_STAGE_CPU:-} ]] && times >>"$SU_STAGE_CPU/$name"
	return "$rc"
}

# su_hashtee OUT [TAP] copies stdin to stdout (and to the fifo TAP), and
# writes "SHA256 BYTES" of the stream to OUT.
su_hashtee() {
	local out=$1 tap=${2:-} d rc=0 p1 p2
	if [[ $SU_HASHTEE_USED == python ]]; then
		# -I -S: no user site, no environment, no site import: a quick start that
		# nothing on the instance can redirect.
		"$SU_PYTHON" -I -S -c "$SU_PY_HASHTEE" "$out" ${tap:+"$tap"}
		return
	fi
	d=$(mktemp -d "$out.XXXXXX") || return 1
	mkfifo "$d/h" "$d/c"
	rc_sha256 <"$d/h" >"$d/sha" &
	p1=$!
	wc -c <"$d/c" >"$d/n" &
	p2=$!
	tee -- "$d/h" "$d/c" ${tap:+"$tap"} || rc=$?
	wait "$p1" "$p2" || rc=1
	printf '%s %s\n' "$(<"$d/sha")" "$(($(<"$d/n") + 0))" >"$out"
	rm -rf -- "$d"
	return "$rc"
}

# su_last_stage WORK PART_SIZE is the stage after the compressor: with
# python, the splitter that cuts, hashes and writes the parts in one pass;
# else the hashing tee of the compressed stream, cut by dd in the caller.
su_last_stage() {
	if [[ $SU_HASHTEE_USED == python ]]; then
		"$SU_PYTHON" -I -S -c "$SU_PY_SPLIT" "$1/cmp.hash" "$1/parts" "$2" "$1/tokens" "$((SU_MAX_INFLIGHT + 1))" "$SU_HASH_COMPRESSED"
	else
		su_hashtee "$1/cmp.hash"
	fi
}

# su_next_part WORK N PART_SIZE FD puts part N of the compressed stream read
# from FD in a file and sets SU_PART_FILE (its path), SU_PART_SIZE (0 at the
# end of the stream) and SU_PART_MD5 (empty when rc_put is to compute it).
# Returns non-zero when reading failed.
su_next_part() {
	local work=$1 n=$2 part_size=$3 fd=$4 k size md5
	SU_PART_SIZE=0 SU_PART_MD5=''
	if [[ $SU_HASHTEE_USED == python ]]; then
		# The splitter has written the part; its line names it. End of the
		# lines is the end of the stream (the splitter's status says whether
		# it ended well).
		read -r -u "$fd" k size md5 || return 0
		[[ $k == "$n" && $size =~ ^[0-9]+$ ]] || return 1
		SU_PART_SIZE=$size SU_PART_MD5=$md5 SU_PART_FILE=$work/parts/s$(((n - 1) % (SU_MAX_INFLIGHT + 1)))
		return 0
	fi
	# dd reads exactly part_size bytes (count_bytes), in large reads.
	SU_PART_FILE=$work/parts/$n
	dd bs=1M count="$part_size" iflag=count_bytes,fullblock status=none <&"$fd" >"$work/parts/$n" || return 1
	SU_PART_SIZE=$(stat -c %s -- "$work/parts/$n")
	((SU_PART_SIZE > 0)) || rm -f -- "$work/parts/$n"
}

# su_pick_compressor NAME sets SU_COMPRESSION (the format) and SU_COMPRESS_CMD.
su_pick_compressor() {
	local want=$1
	if [[ $want == auto ]]; then
		if rc_have zstd; then want=zstd; else want=gzip; fi
	fi
	case $want in
	zstd) rc_have zstd || return 1; SU_COMPRESS_CMD=(zstd -1 -q -c --no-check "-T$SU_ZSTD_THREADS") ;;
	gzip)
		if rc_have pigz; then SU_COMPRESS_CMD=(pigz -1 -c)
		elif rc_have gzip; then SU_COMPRESS_CMD=(gzip -1 -c)
		else return 1; fi
		;;
	none) SU_COMPRESS_CMD=(cat) ;;
	*) return 1 ;;
	esac
	SU_COMPRESSION=$want
}

# su_upload_part N URL FILE [CONTENT_MD5] uploads one part and records the
# outcome in WORK/parts/N.result (work: the caller's) as: status attempts
# http_status curl_exit content_md5 etag.
su_upload_part() {
	local n=$1 url=$2 file=$3 status=failed
	rc_put "$url" "$file" application/octet-stream "${4:-}" && status=ok
	printf '%s %s %s %s %s %s\n' "$status" "$RC_ATTEMPTS" "$RC_HTTP" "$RC_CURL_RC" \
		"${RC_MD5:--}" "${RC_ETAG:--}" >"$work/parts/$n.result.tmp"
	mv -f -- "$work/parts/$n.result.tmp" "$work/parts/$n.result"
	# A part dd cut (WORK/parts/N) is freed once uploaded; a slot of the
	# splitter is kept for its next part. A failed part is kept until the
	# run ends, for the record.
	if [[ $status == ok && $file == */"$n" ]]; then rm -f -- "$file"; fi
}

su_part_ok() { [[ -f $1.result && $(<"$1.result") == ok\ * ]]; }

# su_stream_upload WORK PART_SIZE URLS_FILE COMPRESSION REPORT -- COMMAND [ARG...]
# runs COMMAND and uploads its stdout as described at the top of this file
# ("-- --file PATH" reads a file instead of running a command).
# WORK must be an empty private directory. Writes the report (a JSON object)
# to REPORT and sets SU_STATUS (succeeded|failed), SU_FAILURE (none, urls,
# source, compress, upload, exhausted), SU_SOURCE_EXIT and SU_RAW_BYTES.
# When SU_RAW_TAP names a function, it also receives the raw stream on stdin
# (it must read to the end) and its stdout is kept in WORK/tap.out.
su_stream_upload() {
	local work=$1 part_size=$2 urls_file=$3 compression=$4 report=$5
	shift 5
	[[ ${1-} == -- ]] && shift
	local -a urls=() pids=() sizes=()
	local n=0 k size total=0 err='' failed_part=0 fd tok='' started line tap=''
	local p_tap='' p_prod pstatus='' raw_sha='' cmp_sha='' raw_bytes=0 cmp_bytes=-1 x
	started=${EPOCHREALTIME:-$(date +%s)}
	SU_STATUS=failed SU_FAILURE=none SU_SOURCE_EXIT='' SU_RAW_BYTES=0
	mkdir -p -- "$work/parts"

	if ! [[ $part_size =~ ^[0-9]+$ ]] || ((part_size < 1)); then
		err="invalid part size" SU_FAILURE=urls
	elif ! su_pick_compressor "$compression"; then
		err="compression $compression is not available" SU_FAILURE=compress
	else
		while IFS='' read -r line || [[ -n $line ]]; do
			line=${line%$'\r'}
			[[ -z $line ]] && continue
			if ! rc_valid_url "$line"; then
				err="part URL $((${#urls[@]} + 1)) is not a valid https URL" SU_FAILURE=urls
				break
			fi
			urls+=("$line")
		done <"$urls_file"
		((${#urls[@]} == 0)) && [[ -z $err ]] && err="no part URLs" SU_FAILURE=urls
	fi
	if [[ -n $err ]]; then
		su_write_report "$report" "$err" 0 "" "" 0 0
		return 1
	fi

	SU_HASHTEE_USED=coreutils
	if [[ $SU_HASHTEE != coreutils ]]; then
		# The interpreter itself rather than a wrapper such as a pyenv shim,
		# which costs a chain of forks on every start.
		SU_PYTHON=/usr/bin/python3
		if [[ ! -x $SU_PYTHON ]] && rc_have python3; then
			SU_PYTHON=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
		fi
		[[ -x $SU_PYTHON ]] && SU_HASHTEE_USED=python
	fi
	mkfifo "$work/stream.fifo" "$work/tokens"
	if [[ -n ${SU_RAW_TAP:-} ]]; then
		tap=$work/tap.fifo
		mkfifo "$tap"
		"$SU_RAW_TAP" <"$tap" >"$work/tap.out" 2>"$work/tap.err" &
		p_tap=$!
	fi
	(
		set +e +o pipefail
		if [[ $1 == --file ]]; then
			# A file is read by the first stage itself; its open is the source's status.
			{ if [[ -r $2 ]]; then su_stage hashtee su_hashtee "$work/raw.hash" "$tap" <"$2"; else echo "cannot read the source" >&2; false; fi; } |
				su_stage compress "${SU_COMPRESS_CMD[@]}" | su_stage split su_last_stage "$work" "$part_size"
			x="${PIPESTATUS[*]}"
			if [[ -r $2 ]]; then x="0 $x"; else x="1 $x"; fi
			printf '%s\n' "$x" >"$work/producer.status"
		else
			su_stage source "$@" | su_stage hashtee su_hashtee "$work/raw.hash" "$tap" |
				su_stage compress "${SU_COMPRESS_CMD[@]}" | su_stage split su_last_stage "$work" "$part_size"
			printf '%s\n' "${PIPESTATUS[*]}" >"$work/producer.status"
		fi
	) >"$work/stream.fifo" 2>>"$work/producer.err" &
	p_prod=$!
	exec {fd}<"$work/stream.fifo"
	# The splitter takes one byte from here per part it may cut beyond the
	# first SU_MAX_INFLIGHT + 1. Opened read-write (never blocks), after the
	# producer started, so that only this shell holds it open for writing:
	# when it closes it, the splitter sees the end and stops.
	exec {tok}<>"$work/tokens"

	while :; do
		n=$((n + 1))
		if ! su_next_part "$work" "$n" "$part_size" "$fd"; then
			err="reading the compressed stream failed at part $n" failed_part=$n SU_FAILURE=compress
			break
		fi
		size=$SU_PART_SIZE
		if ((size == 0)); then
			# End of the stream. An empty stream uploads nothing and fails below.
			n=$((n - 1))
			break
		fi
		if ((n > ${#urls[@]})); then
			err="the stream needs more than the ${#urls[@]} part URLs provided" failed_part=$n SU_FAILURE=exhausted
			rm -f -- "$SU_PART_FILE"
			n=$((n - 1))
			break
		fi
		sizes[n]=$size
		total=$((total + size))
		su_stage upload su_upload_part "$n" "${urls[n - 1]}" "$SU_PART_FILE" "$SU_PART_MD5" {fd}<&- {tok}>&- &
		pids[n]=$!
		if ((n > SU_MAX_INFLIGHT)); then
			k=$((n - SU_MAX_INFLIGHT))
			wait "${pids[k]}" || true
			if ! su_part_ok "$work/parts/$k"; then
				err="part $k could not be uploaded" failed_part=$k SU_FAILURE=upload
				break
			fi
			printf . >&"$tok"
		fi
		((size < part_size)) && break
	done
	# Closing the stream stops the producer (SIGPIPE, or the end of the
	# tokens for the splitter) when we stopped early.
	exec {fd}<&- {tok}>&-
	for ((k = 1; k <= n; k++)); do
		[[ -n ${pids[k]-} ]] && { wait "${pids[k]}" 2>/dev/null || true; }
	done
	if [[ -z $err ]]; then
		for ((k = 1; k <= n; k++)); do
			if ! su_part_ok "$work/parts/$k"; then
				err="part $k could not be uploaded" failed_part=$k SU_FAILURE=upload
				break
			fi
		done
	fi
	wait "$p_prod" 2>/dev/null || true
	if [[ -n $p_tap ]]; then
		# If the producer died before opening the tap, its reader still waits
		# in open(): a read-write open releases it (and is harmless otherwise).
		exec {x}<>"$tap"
		exec {x}>&-
		wait "$p_tap" 2>/dev/null || true
	fi

	[[ -f $work/producer.status ]] && pstatus=$(<"$work/producer.status")
	SU_SOURCE_EXIT=${pstatus%% *}
	[[ -f $work/raw.hash ]] && read -r raw_sha raw_bytes x <"$work/raw.hash"
	[[ -f $work/cmp.hash ]] && read -r cmp_sha cmp_bytes x <"$work/cmp.hash"
	[[ $raw_bytes =~ ^[0-9]+$ ]] || raw_bytes=0
	SU_RAW_BYTES=$raw_bytes
	if [[ -z $err ]]; then
		if [[ -z $pstatus ]]; then
			err="the producer pipeline did not report" SU_FAILURE=source
		elif [[ $SU_SOURCE_EXIT != 0 ]]; then
			err="the source exited with status $SU_SOURCE_EXIT" SU_FAILURE=source
		elif [[ $pstatus != "0 0 0 0" ]]; then
			err="the hashing or compression pipeline failed (statuses $pstatus)" SU_FAILURE=compress
		elif ! rc_valid_sha256 "$raw_sha" || { [[ $cmp_sha != - || $SU_HASH_COMPRESSED != 0 ]] && ! rc_valid_sha256 "$cmp_sha"; }; then
			err="hashing failed" SU_FAILURE=compress
		elif [[ $cmp_bytes != "$total" ]]; then
			err="the parts hold $total bytes but the compressed stream had $cmp_bytes" SU_FAILURE=compress
		elif ((raw_bytes == 0)); then
			err="the source produced no data" SU_FAILURE=source
		fi
	fi
	[[ -z $err ]] && SU_STATUS=succeeded
	su_write_report "$report" "$err" "$failed_part" "$raw_sha" "$cmp_sha" "$raw_bytes" "$total" \
		"$n" "$pstatus" "$started"
	[[ $SU_STATUS == succeeded ]]
}

# su_write_report FILE ERROR FAILED_PART RAW_SHA CMP_SHA RAW_BYTES CMP_BYTES [PARTS PIPESTATUS STARTED]
# is called only by su_stream_upload and reads its locals work, part_size and
# sizes (bash scoping is dynamic).
su_write_report() {
	local file=$1 err=$2 failed=$3 raw_sha=$4 cmp_sha=${5#-} raw_bytes=$6 cmp_bytes=$7
	local parts=${8:-0} pstatus=${9:-} started=${10:-} k st att http crc md5 etag sep='' out elapsed=null
	out="{\"status\":\"$SU_STATUS\""
	if [[ -n $err ]]; then
		rc_json_q "$err" && out+=",\"error\":$REPLY,\"failure\":\"$SU_FAILURE\""
	fi
	((failed > 0)) && out+=",\"failed_part\":$failed"
	rc_json_q "${SU_COMPRESSION:-none}" && out+=",\"compression\":$REPLY"
	rc_json_q "${SU_COMPRESS_CMD[*]:-}" && out+=",\"compressor\":$REPLY,\"hashing_tee\":\"${SU_HASHTEE_USED:-}\""
	rc_json_q "$raw_sha" && out+=",\"raw_sha256\":$REPLY,\"raw_bytes\":$raw_bytes"
	rc_json_q "$cmp_sha" && out+=",\"compressed_sha256\":$REPLY,\"compressed_bytes\":$cmp_bytes"
	rc_json_q "$pstatus" && out+=",\"pipeline_exit_status\":$REPLY"
	if [[ -n $started && -n ${EPOCHREALTIME:-} ]]; then
		elapsed=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
	fi
	out+=",\"elapsed_seconds\":$elapsed,\"part_size\":$((part_size + 0)),\"part_count\":$parts,\"parts\":["
	for ((k = 1; k <= parts; k++)); do
		st=missing att=0 http=000 crc=0 md5=- etag=-
		if [[ -f $work/parts/$k.result ]]; then
			read -r st att http crc md5 etag <"$work/parts/$k.result"
		fi
		out+="$sep{\"part_number\":$k,\"size\":${sizes[k]:-0},\"status\":\"$st\",\"attempts\":$att"
		out+=",\"http_status\":$((10#${http:-0})),\"curl_exit\":$crc"
		[[ $md5 != - ]] && rc_json_q "$md5" && out+=",\"content_md5\":$REPLY"
		[[ $etag != - ]] && rc_json_q "$etag" && out+=",\"etag\":$REPLY"
		out+="}"
		sep=,
	done
	out+="]}"
	printf '%s\n' "$out" >"$file"
}

# The command line (a document sources the functions above and never runs it).
# compact: omit
su_usage() {
	echo "usage: stream-upload.sh --part-size BYTES --part-urls FILE [--compression auto|zstd|gzip|none] [--work DIR] (--source FILE | -- COMMAND [ARG...])" >&2
	exit 2
}

su_main() {
	set -uo pipefail
	export LC_ALL=C
	umask 077
	local part_size='' urls_file='' compression=auto work='' source='' own_work=0 rc=0
	while (($#)); do
		case $1 in
		--part-size) part_size=${2-}; shift 2 || su_usage ;;
		--part-urls) urls_file=${2-}; shift 2 || su_usage ;;
		--compression) compression=${2-}; shift 2 || su_usage ;;
		--work) work=${2-}; shift 2 || su_usage ;;
		--source) source=${2-}; shift 2 || su_usage ;;
		--) shift; break ;;
		*) su_usage ;;
		esac
	done
	[[ -n $part_size && -n $urls_file ]] || su_usage
	if [[ -n $source ]]; then
		(($# == 0)) || su_usage
		set -- --file "$source"
	fi
	(($# > 0)) || su_usage
	if [[ -z $work ]]; then
		rc_workdir 0 || { echo "no writable working directory" >&2; exit 1; }
		work=$RC_WORK own_work=1
	fi
	su_stream_upload "$work" "$part_size" "$urls_file" "$compression" "$work/report.json" -- "$@" || rc=1
	cat -- "$work/report.json"
	((own_work)) && rm -rf -- "$work"
	return "$rc"
}

if [[ ${BASH_SOURCE[0]-} == "$0" ]]; then
	su_main "$@"
	exit $?
fi
# compact: on
