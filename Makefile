# responder: build, check, test and demo.
GO ?= go
# Extra flags for go test, for example TESTFLAGS=-v (used by .ci/run).
TESTFLAGS ?=

.PHONY: build lint vet test demo lambda bench-capture bench-fleet analysis-tools test-analysis-tools

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
# -timeout 20m: the collection tests run the real scripts (memory, volatile
# data) on the test machine; the lambda package took 8.5 minutes alone and 12
# within the full suite on 2 cores at load average 10, past go test's default 10.
# responder/image runs without -race: its tests image whole disks of 1 GiB
# (the smallest EBS volume) into the in-memory S3, and the race detector's
# shadow memory took one such test past 14 GB resident (8 CPU-minutes), two
# packages at once past the machine's memory.
test: lint
	$(GO) test -race -timeout 20m $(TESTFLAGS) $$($(GO) list ./... | grep -v '/responder/image$$')
	$(GO) test -timeout 20m $(TESTFLAGS) ./responder/image/

# Contain a suspect instance in a local moto emulator; the case lands in ./cases.
demo:
	scripts/demo.sh

# The Lambda function artifact (provided.al2023, arm64): dist/responder-lambda.zip.
lambda:
	lambda/build.sh

# The instance-side capture pipeline (ssm-documents/scripts/stream-upload.sh)
# on 1 GiB of memory-like data against the loopback HTTPS receiver, beside
# openssl dgst -sha256 and zstd -1 on the same file in the same run
# (pct-of-bound: percent of the slower of the two). See BENCHMARKS.md.
bench-capture:
	STREAM_BENCH_MIB=$${STREAM_BENCH_MIB:-1024} $(GO) test ./ssm-documents -run '^$$' \
		-bench 'StreamUpload/(openssl|zstd-1|stream-upload-zstd)' -benchtime 3x

# A fleet response at EC2's token buckets: N = 1, 10, 100, 1000 instances
# through one paced Clients, against the fake with 100 ms a call and EC2's
# buckets per action, on a clock FLEET_SCALE times faster (default 5),
# beside the token-bucket bounds (see BENCHMARKS.md).
FLEET_SCALE ?= 5
bench-fleet:
	FLEET_SCALE=$(FLEET_SCALE) $(GO) test -run '^$$' -bench 'BenchmarkFleetRespond|BenchmarkBlastSlots' -benchtime 1x -timeout 60m ./responder/

# Volatility 3 and plaso in a virtual environment (scripts/analysis-tools.sh:
# idempotent; prints its bin directory), then the analysis job run with the
# real tools (ssm-documents/realtools_test.go, build tag analysistools). Not
# part of make test or CI: this project's machines reach no Python package
# index, and the script says so and fails.
analysis-tools:
	scripts/analysis-tools.sh

test-analysis-tools:
	bin=$$(scripts/analysis-tools.sh) && PATH="$$bin:$$PATH" $(GO) test -tags analysistools -run RealTools -count=1 -v ./ssm-documents
