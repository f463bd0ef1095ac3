# responder: build, check, test and demo.
GO ?= go
# Extra flags for go test, for example TESTFLAGS=-v (used by .ci/run).
TESTFLAGS ?=

.PHONY: build lint vet test demo lambda bench-fleet

# The responder binary, in ./bin.
build:
	$(GO) build -o bin/responder ./cmd/responder

# The fast checks, seconds on a warm build cache: gofmt, a tidy go.mod and
# go.sum, go vet, staticcheck (see scripts/lint.sh).
lint:
	GO=$(GO) scripts/lint.sh

vet:
	$(GO) vet ./...

# The fast checks, then the unit and integration tests. The integration
# tests (./integration) start their own moto emulator on loopback; a test
# that lacks a program or moto skips locally and fails in CI (CI=true).
test: lint
	$(GO) test -race $(TESTFLAGS) ./...

# Contain a suspect instance in a local moto emulator; the case lands in ./cases.
demo:
	scripts/demo.sh

# The Lambda function artifact (provided.al2023, arm64): dist/responder-lambda.zip.
lambda:
	lambda/build.sh

# A fleet response at EC2's token buckets: N = 1, 10, 100, 1000 instances
# through one paced Clients, against the fake with 100 ms a call and EC2's
# buckets per action, on a clock FLEET_SCALE times faster (default 5),
# beside the token-bucket bounds (see BENCHMARKS.md).
FLEET_SCALE ?= 5
bench-fleet:
	FLEET_SCALE=$(FLEET_SCALE) $(GO) test -run '^$$' -bench 'BenchmarkFleetRespond|BenchmarkBlastSlots' -benchtime 1x -timeout 60m ./responder/
