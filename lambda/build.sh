#!/usr/bin/env bash
# Builds the responder Lambda function: one static bootstrap binary for the
# provided.al2023 runtime on arm64 (Graviton), zipped for upload.
#
#   lambda/build.sh [OUTPUT_ZIP]      default: dist/responder-lambda.zip
#
# GOARCH=amd64 builds for an x86_64 function instead. The zip holds only
# "bootstrap" (mode 0755) with a fixed timestamp, so the same source gives
# the same zip.
set -euo pipefail

out=${1:-dist/responder-lambda.zip}
case $out in
  /*) ;;
  *) out="$PWD/$out" ;;
esac
cd "$(dirname "$0")/.."

arch=${GOARCH:-arm64}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

CGO_ENABLED=0 GOOS=linux GOARCH="$arch" go build -tags lambda.norpc -trimpath -buildvcs=false \
  -ldflags='-s -w' -o "$work/bootstrap" ./lambda
chmod 0755 "$work/bootstrap"
touch -t 198001010000 "$work/bootstrap"

mkdir -p "$(dirname "$out")"
rm -f "$out"
if command -v zip >/dev/null; then
  (cd "$work" && TZ=UTC zip -q -X "$out" bootstrap)
else
  # Python's zipfile keeps the file mode, as zip does.
  (cd "$work" && python3 -m zipfile -c "$out" bootstrap)
fi
echo "built $out: linux/$arch, $(stat -c %s "$work/bootstrap") bytes unzipped, $(stat -c %s "$out") bytes zipped"
