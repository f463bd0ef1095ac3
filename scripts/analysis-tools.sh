#!/usr/bin/env bash
# analysis-tools.sh: install the analysis tools the Responder-AnalysisJob
# document runs (Volatility 3 and plaso, from the Python package index) into
# a virtual environment, idempotently, and print its bin directory on
# stdout (progress and timing go to stderr). The real-tool tests
# (ssm-documents/realtools_test.go, make test-analysis-tools) put it on PATH.
#
#   scripts/analysis-tools.sh            install or check, print the bin dir
#   ANALYSIS_TOOLS_DIR=DIR               where the environment goes
#                                        (default ~/.cache/responder/analysis-tools)
#   VOLATILITY3_VERSION, PLASO_VERSION   the pinned versions
#
# Needs python3 with venv and a reachable package index. Exits 1 with the
# reason when the index cannot be reached or a package does not install
# (plaso builds native bindings, pytsk3 and the libyal ones, where no wheel
# fits this Python: that needs a C/C++ compiler and python3-dev).
set -euo pipefail

vol_version=${VOLATILITY3_VERSION:-2.28.2}
plaso_version=${PLASO_VERSION:-20260720}
dir=${ANALYSIS_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/responder/analysis-tools}
want="volatility3==$vol_version plaso==$plaso_version $(python3 -c 'import sys; print("python%d.%d" % sys.version_info[:2])')"

if [[ -f $dir/.installed && $(cat "$dir/.installed") == "$want" && -x $dir/bin/vol && -x $dir/bin/log2timeline.py && -x $dir/bin/psort.py ]]; then
	echo "analysis tools: $want already in $dir" >&2
	printf '%s\n' "$dir/bin"
	exit 0
fi

started=$(date +%s)
rm -f "$dir/.installed"
if ! python3 -m venv "$dir" >&2; then
	echo "analysis tools: python3 -m venv $dir failed (install python3-venv)" >&2
	exit 1
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Few retries and a short timeout: an unreachable index is a "no", not a
# reason to wait minutes.
if ! "$dir/bin/pip" install --disable-pip-version-check --retries 1 --timeout 30 \
	"volatility3==$vol_version" "plaso==$plaso_version" >"$log" 2>&1; then
	tail -n 15 "$log" >&2
	if grep -Eq 'NewConnectionError|Name or service not known|Temporary failure in name resolution|Connection refused' "$log"; then
		echo "analysis tools: NOT INSTALLED: the Python package index cannot be reached from this machine" >&2
	else
		echo "analysis tools: NOT INSTALLED: pip failed (see above)" >&2
	fi
	exit 1
fi
for tool in vol log2timeline.py psort.py; do
	[[ -x $dir/bin/$tool ]] || {
		echo "analysis tools: installed, but $dir/bin/$tool is missing" >&2
		exit 1
	}
done
printf '%s\n' "$want" >"$dir/.installed"
echo "analysis tools: $want installed in $dir in $(($(date +%s) - started)) s" >&2
printf '%s\n' "$dir/bin"
