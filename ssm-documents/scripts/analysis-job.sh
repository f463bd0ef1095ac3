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
#   RESPONDER_PLUGINS      Volatility 3 plugins, comma-separated
#
# The tools are taken from the image: when one is missing the job reports
# status "skipped" with the reason. Each output is hashed here and written
# once (If-None-Match: *, with a SHA-256 checksum, as the bucket's Object
# Lock and write-once policy require); the responder reads it back and
# records it with the SHA-256 it computes itself.
#
# Output: one JSON line, schema responder.analysis-job/1. Exit status 0 when
# the job ran or was skipped, 1 when it failed.
# shellcheck shell=bash

aj_schema=responder.analysis-job/1
aj_outputs=()

aj_report() {
	local status=$1 reason=$2
	rc_json_q "$reason"
	printf '{"schema":"%s","status":"%s","tool":"%s","reason":%s,"outputs":[%s]}\n' \
		"$aj_schema" "$status" "$RESPONDER_TOOL" "$REPLY" "$(IFS=,; printf '%s' "${aj_outputs[*]}")"
	[[ $status != failed ]]
	exit
}

# aj_store FILE NAME puts FILE at PREFIX/NAME once and records it.
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

aj_volatility() {
	local vol plugin out
	local -a plugins
	vol=$(aj_tool vol vol.py volatility3) || aj_report skipped "Volatility 3 (vol) is not installed on the analysis image"
	[[ -r $RESPONDER_MEMORY ]] || aj_report failed "no memory image at $RESPONDER_MEMORY (fetch it first)"
	IFS=, read -ra plugins <<<"$RESPONDER_PLUGINS"
	for plugin in "${plugins[@]}"; do
		out=$work/$plugin.json
		if ! "$vol" -q -r json -f "$RESPONDER_MEMORY" "$plugin" >"$out" 2>"$work/$plugin.err"; then
			aj_store "$work/$plugin.err" "volatility/$plugin.err"
			continue
		fi
		aj_store "$out" "volatility/$plugin.json"
	done
	aj_report ok ""
}

aj_plaso() {
	local l2t psort
	l2t=$(aj_tool log2timeline.py log2timeline) || aj_report skipped "plaso (log2timeline) is not installed on the analysis image"
	psort=$(aj_tool psort.py psort) || aj_report skipped "plaso (psort) is not installed on the analysis image"
	[[ -d $RESPONDER_MOUNT_ROOT ]] || aj_report failed "no mounts under $RESPONDER_MOUNT_ROOT (mount first)"
	if ! "$l2t" --quiet --unattended --status_view none --storage_file "$work/timeline.plaso" "$RESPONDER_MOUNT_ROOT" >"$work/log2timeline.log" 2>&1; then
		aj_store "$work/log2timeline.log" "plaso/log2timeline.log"
		aj_report failed "log2timeline failed (its log is stored)"
	fi
	aj_store "$work/timeline.plaso" "plaso/timeline.plaso"
	if ! "$psort" --quiet --status_view none -o dynamic -w "$work/timeline.csv" "$work/timeline.plaso" >"$work/psort.log" 2>&1; then
		aj_store "$work/psort.log" "plaso/psort.log"
		aj_report failed "psort failed (its log is stored)"
	fi
	aj_store "$work/timeline.csv" "plaso/timeline.csv"
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
	[[ ${RESPONDER_PLUGINS:-} =~ ^[a-z]+\.[a-z._]+(,[a-z]+\.[a-z._]+)*$ ]] || aj_report failed "invalid plugin list"
	rc_have aws || aj_report failed "aws CLI not found on the analysis image"
	work=$(mktemp -d /analysis/job.XXXXXX 2>/dev/null || mktemp -d) || aj_report failed "no work directory"
	case $RESPONDER_TOOL in
	volatility) aj_volatility ;;
	plaso) aj_plaso ;;
	esac
}

aj_main "$@"
