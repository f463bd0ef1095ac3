#!/usr/bin/env bash
# The fast checks (gofmt, go mod tidy, go vet, staticcheck, the layout rules
# of internal/archtest), cheapest first; seconds on a warm build cache (the first
# run in a fresh clone also downloads and builds staticcheck). `make lint`
# and .ci/run run this, before any test. Each check names what is wrong and
# how to fix it, and the first failure ends the run.
set -euo pipefail
cd "$(dirname "$0")/.."
go=${GO:-go}

fail() {
  echo "lint: $*" >&2
  exit 1
}

echo "== gofmt -l"
unformatted=$("$("$go" env GOROOT)/bin/gofmt" -l .)
if [ -n "$unformatted" ]; then
  echo "$unformatted" >&2
  fail "these files are not gofmt-formatted: run gofmt -w on them"
fi

echo "== go mod tidy -diff"
"$go" mod tidy -diff || fail "go.mod and go.sum are not tidy (the diff above): run go mod tidy"

echo "== go vet ./..."
"$go" vet ./... || fail "go vet found the problems above"
# The real-tool tests are built only with their tag (make test-analysis-tools):
# vet them here so that they keep compiling.
"$go" vet -tags analysistools ./ssm-documents/ || fail "go vet -tags analysistools found the problems above"

echo "== staticcheck ./... (go tool: the version go.mod pins)"
"$go" tool staticcheck ./... || fail "staticcheck found the problems above"

echo "== the layout rules (go test ./internal/archtest/)"
"$go" test -count=1 ./internal/archtest/ || fail "a layout rule is broken (see README: How the code is laid out)"
