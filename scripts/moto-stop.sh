#!/usr/bin/env bash
# Stop the moto started by scripts/moto-start.sh DIR.
set -euo pipefail
dir=${1:?usage: moto-stop.sh DIR}
[ -f "$dir/moto.pid" ] || exit 0
pid=$(cat "$dir/moto.pid")
if kill "$pid" 2>/dev/null; then
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
fi
rm -f "$dir/moto.pid"
