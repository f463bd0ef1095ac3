#!/usr/bin/env bash
# analysis-job.sh: run one analysis tool of the analysis image on the
# workspace's evidence and store its outputs in the case. Run by the
# Responder-AnalysisJob document (forensics account), after
# responder-common.sh, with the instance profile's credentials (which write
# only cases/*/analysis/*).
#
# Input (environment):
#   RESPONDER_CASE_ID      the case
#   RESPONDER_TOOL         volatility: Volatility 3 on the memory image
#                          plaso: log2timeline then psort on the mounts
#   RESPONDER_BUCKET       the evidence bucket
#   RESPONDER_PREFIX       cases/<case-id>/analysis/<workspace>/: where outputs go
#   RESPONDER_MEMORY       the memory image on the instance (volatility)
#   RESPONDER_MOUNT_ROOT   the read-only mounts (plaso)
#   RESPONDER_PLUGINS      Volatility 3 plugins, comma-separated (full names,
#                          e.g. linux.pslist.PsList)
#   RESPONDER_SYMBOLS      Volatility 3 symbol directory (ISF files baked into
#                          the analysis image), or none
#
# The analysis VPC has no internet: Volatility 3 runs with --offline (no
# remote ISF and no Microsoft symbol server), so the kernel's symbol tables
# must be in RESPONDER_SYMBOLS. plaso needs no network.
#
# The tools are taken from the image: when one is missing the job reports
# status "skipped" with the reason. Every run of a tool (each Volatility 3
# plugin; log2timeline; each psort output) is reported in "runs" with its
# exit status, and its stderr or log is stored: a run that exits non-zero
# makes the job "failed", whatever the others did. Each output is hashed
# here and written once (If-None-Match: *, with a SHA-256 checksum, as the
# bucket's Object Lock and write-once policy require); the responder reads
# it back and records it with the SHA-256 it computes itself.
#
# Output: one JSON line, schema responder.analysis-job/1. Exit status 0 when
# the job ran or was skipped, 1 when it failed.
# shellcheck shell=bash

aj_schema=responder.analysis-job/1
aj_outputs=()
aj_runs=()
aj_version=''
aj_symbols=''

aj_report() {
	local status=$1 reason=$2 version symbols
	rc_json_q "$reason"
	reason=$REPLY
	rc_json_q "$aj_version"
	version=$REPLY
	rc_json_q "$aj_symbols"
	symbols=$REPLY
	rc_json_q "${RESPONDER_TOOL:-}"
	printf '{"schema":"%s","status":"%s","tool":%s,"version":%s,"symbol_dirs":%s,"reason":%s,"runs":[%s],"outputs":[%s]}\n' \
		"$aj_schema" "$status" "$REPLY" "$version" "$symbols" "$reason" \
		"$(IFS=,; printf '%s' "${aj_runs[*]}")" "$(IFS=,; printf '%s' "${aj_outputs[*]}")"
	[[ $status != failed ]]
	exit
}

# aj_store FILE NAME puts FILE at PREFIX/NAME once, records it and sets
# REPLY to its key.
aj_store() {
	local file=$1 name=$2 key sum size out
	key=$RESPONDER_PREFIX$name
	sum=$(rc_sha256 <"$file")
	size=$(wc -c <"$file" | tr -d ' ')
	if ! out=$(aws s3api put-object --bucket "$RESPONDER_BUCKET" --key "$key" --body "$file" \
		--if-none-match '*' --checksum-algorithm SHA256 2>&1 >/dev/null); then
		aj_report failed "store $key: $out"
	fi
	rc_json_q "$key"
	aj_outputs+=("{\"key\":$REPLY,\"sha256\":\"$sum\",\"size\":$size}")
	REPLY=$key
}

# aj_run_record NAME EXIT OUTPUT_KEY LOG_KEY records one run of a tool.
aj_run_record() {
	local name=$1 rc=$2 output=$3 log=$4 status=ok
	((rc == 0)) || status=failed
	rc_json_q "$name"
	name=$REPLY
	rc_json_q "$output"
	output=$REPLY
	rc_json_q "$log"
	aj_runs+=("{\"name\":$name,\"exit_status\":$rc,\"status\":\"$status\",\"output\":$output,\"log\":$REPLY}")
}

# aj_tool NAME... prints the first of the commands found.
aj_tool() {
	local t
	for t in "$@"; do
		if rc_have "$t"; then
			printf '%s' "$t"
			return 0
		fi
	done
	return 1
}

# aj_vol_options sets aj_vol_opts: quiet, offline, JSON to stdout, files
# and cache in the work directory, the configured symbols.
aj_vol_options() {
	mkdir -p "$work/volatility-files" "$work/volatility-cache" || aj_report failed "no work directory for Volatility 3"
	aj_vol_opts=(-q --offline -r json -o "$work/volatility-files" --cache-path "$work/volatility-cache")
	if [[ $RESPONDER_SYMBOLS != none && -d $RESPONDER_SYMBOLS ]]; then
		aj_vol_opts+=(-s "$RESPONDER_SYMBOLS")
		aj_symbols=$RESPONDER_SYMBOLS
	fi
}

aj_volatility() {
	local vol plugin out err rc okey failed=''
	local -a plugins
	vol=$(aj_tool vol vol.py volatility3) || aj_report skipped "Volatility 3 (vol) is not installed on the analysis image"
	[[ -r $RESPONDER_MEMORY ]] || aj_report failed "no memory image at $RESPONDER_MEMORY (fetch it first)"
	aj_vol_options
	IFS=, read -ra plugins <<<"$RESPONDER_PLUGINS"
	for plugin in "${plugins[@]}"; do
		out=$work/$plugin.json
		err=$work/$plugin.stderr.txt
		"$vol" "${aj_vol_opts[@]}" -f "$RESPONDER_MEMORY" "$plugin" >"$out" 2>"$err"
		rc=$?
		[[ -n $aj_version ]] || aj_version=$(grep -m1 '^Volatility 3 Framework ' "$err")
		okey=''
		if [[ -s $out ]]; then
			aj_store "$out" "volatility/$plugin.json"
			okey=$REPLY
		fi
		aj_store "$err" "volatility/$plugin.stderr.txt"
		aj_run_record "$plugin" "$rc" "$okey" "$REPLY"
		((rc == 0)) || failed+="${failed:+, }$plugin (exit $rc)"
	done
	[[ -z $failed ]] || aj_report failed "Volatility 3 failed: $failed; each plugin's stderr is stored (without the kernel's symbol tables in the symbol directory, only banners.Banners can run)"
	aj_report ok ""
}

# aj_plaso_run NAME OUTPUT LOGNAME CMD... runs one plaso tool with its
# console output to LOGNAME and its own log (--logfile) to LOGNAME.gz,
# stores OUTPUT (when made) and both logs, and records the run. Returns the
# tool's exit status.
aj_plaso_run() {
	local name=$1 output=$2 log=$work/$3 rc okey=''
	shift 3
	(cd "$work" && TMPDIR=$work/tmp "$1" --logfile "$log.gz" "${@:2}") >"$log" 2>&1
	rc=$?
	if ((rc == 0)) && [[ -s $output ]]; then
		aj_store "$output" "plaso/${output##*/}"
		okey=$REPLY
	fi
	if [[ -s $log.gz ]]; then
		aj_store "$log.gz" "plaso/${log##*/}.gz"
	fi
	aj_store "$log" "plaso/${log##*/}"
	aj_run_record "$name" "$rc" "$okey" "$REPLY"
	return "$rc"
}

aj_plaso() {
	local l2t psort storage=$work/timeline.plaso
	l2t=$(aj_tool log2timeline.py log2timeline) || aj_report skipped "plaso (log2timeline) is not installed on the analysis image"
	psort=$(aj_tool psort.py psort) || aj_report skipped "plaso (psort) is not installed on the analysis image"
	[[ -d $RESPONDER_MOUNT_ROOT ]] || aj_report failed "no mounts under $RESPONDER_MOUNT_ROOT (mount first)"
	mkdir -p "$work/tmp" || aj_report failed "no work directory for plaso"
	aj_version=$("$l2t" --version 2>&1 | head -n1)
	aj_plaso_run log2timeline "$storage" log2timeline.log \
		"$l2t" --quiet --unattended --status_view none --storage_file "$storage" "$RESPONDER_MOUNT_ROOT" ||
		aj_report failed "log2timeline failed (its log is stored)"
	aj_plaso_run "psort json_line" "$work/timeline.jsonl" psort-json_line.log \
		"$psort" --quiet --status_view none --output_time_zone UTC -o json_line -w "$work/timeline.jsonl" "$storage" ||
		aj_report failed "psort (json_line) failed (its log is stored)"
	aj_plaso_run "psort l2tcsv" "$work/timeline.csv" psort-l2tcsv.log \
		"$psort" --quiet --status_view none --output_time_zone UTC -o l2tcsv -w "$work/timeline.csv" "$storage" ||
		aj_report failed "psort (l2tcsv) failed (its log is stored)"
	aj_report ok ""
}

aj_main() {
	set -uo pipefail
	export LC_ALL=C
	umask 077
	rc_valid_case_id "${RESPONDER_CASE_ID:-}" || aj_report failed "invalid case ID"
	[[ ${RESPONDER_TOOL:-} =~ ^(volatility|plaso)$ ]] || aj_report failed "invalid tool"
	[[ ${RESPONDER_BUCKET:-} =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] || aj_report failed "invalid bucket"
	[[ ${RESPONDER_PREFIX:-} == "cases/$RESPONDER_CASE_ID/analysis/"*/ && $RESPONDER_PREFIX != *..* ]] ||
		aj_report failed "the prefix is not under cases/$RESPONDER_CASE_ID/analysis/"
	[[ ${RESPONDER_MEMORY:-} =~ ^/analysis/[a-z0-9-]{1,32}/[a-z.-]{1,32}$ ]] || aj_report failed "invalid memory path"
	[[ ${RESPONDER_MOUNT_ROOT:-} =~ ^/mnt/[a-z0-9-]{1,32}$ ]] || aj_report failed "invalid mount root"
	[[ ${RESPONDER_PLUGINS:-} =~ ^[a-z]+(\.[A-Za-z0-9_]+){1,3}(,[a-z]+(\.[A-Za-z0-9_]+){1,3})*$ ]] || aj_report failed "invalid plugin list"
	[[ ${RESPONDER_SYMBOLS:-} == none || (${RESPONDER_SYMBOLS:-} =~ ^/[A-Za-z0-9._/-]{1,200}$ && $RESPONDER_SYMBOLS != *..*) ]] ||
		aj_report failed "invalid symbol directory"
	rc_have aws || aj_report failed "aws CLI not found on the analysis image"
	work=$(mktemp -d /analysis/job.XXXXXX 2>/dev/null || mktemp -d) || aj_report failed "no work directory"
	case $RESPONDER_TOOL in
	volatility) aj_volatility ;;
	plaso) aj_plaso ;;
	esac
}

aj_main "$@"
