#!/usr/bin/env bash
# Start the moto AWS emulator on a free loopback port, in the background.
# Usage: scripts/moto-start.sh DIR
# Writes DIR/moto.pid and DIR/moto.log and prints the endpoint URL once moto
# answers. Stop it with scripts/moto-stop.sh DIR.
set -euo pipefail
dir=${1:?usage: moto-start.sh DIR}
mkdir -p "$dir"

if ! python3 -c 'import moto' 2>/dev/null; then
  echo "moto-start: python3 cannot import moto (the AWS emulator); install it for this python3" >&2
  exit 1
fi
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"

# motoserver.py runs moto.server with the fixes of its emulation the
# responder's read-backs need (see the file).
python3 "$(dirname "$0")/../integration/motoserver.py" -H 127.0.0.1 -p "$port" >"$dir/moto.log" 2>&1 &
echo $! >"$dir/moto.pid"

for _ in $(seq 1 100); do
  if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/moto-api/", timeout=1)' "$url" 2>/dev/null; then
    echo "$url"
    exit 0
  fi
  if ! kill -0 "$(cat "$dir/moto.pid")" 2>/dev/null; then
    echo "moto-start: moto exited; its log:" >&2
    cat "$dir/moto.log" >&2
    exit 1
  fi
  sleep 0.3
done
echo "moto-start: moto did not answer at $url within 30 s" >&2
exit 1
