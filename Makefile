# responder: build, test and demo.
GO ?= go
# Extra flags for go test, for example TESTFLAGS=-v (used by .ci/run).
TESTFLAGS ?=

.PHONY: build vet test demo lambda

# The responder binary, in ./bin.
build:
	$(GO) build -o bin/responder ./cmd/responder

vet:
	$(GO) vet ./...

# Unit and integration tests. The integration tests (./integration) start
# their own moto emulator on loopback; without moto they skip locally and
# fail in CI (CI=true).
test: vet
	$(GO) test -race $(TESTFLAGS) ./...

# Contain a suspect instance in a local moto emulator; the case lands in ./cases.
demo:
	scripts/demo.sh

# The Lambda function artifact (provided.al2023, arm64): dist/responder-lambda.zip.
lambda:
	lambda/build.sh
