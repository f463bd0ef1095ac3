#!/usr/bin/env bash
# Demo: contain a suspect EC2 instance in a local AWS emulator.
#
# Builds responder, starts moto on a free loopback port, builds a suspect lab
# in it (an instance with two volumes, two interfaces, an instance profile),
# runs `responder respond` against it with the case written to ./cases, and
# shows the case folder. Everything it starts is stopped on exit.
#
# moto does not implement GetConsoleScreenshot, LockSnapshot and
# DescribeLockedSnapshots, so the demo talks to moto
# through a small proxy that answers them (a 1x1 image, a table of locks).
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
proxy_pid=
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
  if [ -n "$proxy_pid" ]; then kill "$proxy_pid" 2>/dev/null || true; fi
  scripts/moto-stop.sh "$work"
  rm -rf "$work"
}
trap cleanup EXIT

echo "== building responder, mklab and faultproxy"
go build -o "$work/responder" ./cmd/responder
go build -o "$work/mklab" ./internal/lab/mklab
go build -o "$work/faultproxy" ./integration/faultproxy

echo "== starting moto"
moto_url=$(scripts/moto-start.sh "$work")
"$work/faultproxy" -target "$moto_url" -screenshot -snapshot-lock -lookup-events -connection-tracking >"$work/proxy.url" &
proxy_pid=$!
for _ in $(seq 1 50); do [ -s "$work/proxy.url" ] && break; sleep 0.1; done
proxy_url=$(head -n 1 "$work/proxy.url")
echo "moto at $moto_url, proxy at $proxy_url"

# Only the emulator's dummy credentials: nothing here can reach a real account.
export AWS_ENDPOINT_URL=$proxy_url AWS_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN

echo "== building the suspect lab"
"$work/mklab" -name demo >"$work/lab.json"
field() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$work/lab.json" "$1"; }
instance=$(field instance_id)
topic=$(field topic_arn)
echo "suspect instance $instance ($(field root_volume_id), $(field data_volume_id); $(field primary_eni), $(field secondary_eni))"

# DEMO_CASES_DIR: where the case goes (./cases by default; the demo's test
# points it at a temporary folder).
cases=${DEMO_CASES_DIR:-./cases}
case_id="demo-$(date -u +%Y%m%d-%H%M%S)"
echo "== responder respond --instance-id $instance --case-id $case_id --evidence-dir $cases --topic-arn $topic"
rc=0
"$work/responder" respond --instance-id "$instance" --case-id "$case_id" \
  --evidence-dir "$cases" --topic-arn "$topic" --output table || rc=$?
echo "responder exited $rc"

echo "== the case folder"
find "$cases/$case_id" | sort
echo "== head of $cases/$case_id/manifest.json"
head -n 25 "$cases/$case_id/manifest.json"
exit "$rc"
