package fakeaws

import (
	"testing"

	"github.com/responder-ir/responder/responder/cloud"
)

// wantCode fails the test unless err carries the AWS error code want ("" for
// no error).
func wantCode(t *testing.T, err error, want string) {
	t.Helper()
	if got := cloud.ErrorCode(err); got != want || (want == "" && err != nil) {
		t.Fatalf("error code = %q (err %v), want %q", got, err, want)
	}
}
