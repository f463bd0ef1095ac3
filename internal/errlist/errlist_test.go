package errlist_test

import (
	"errors"
	"io/fs"
	"testing"

	"github.com/responder-ir/responder/internal/errlist"
)

type codeError struct{ code string }

func (e *codeError) Error() string { return "code " + e.code }

func TestJoin(t *testing.T) {
	if err := errlist.Join(); err != nil {
		t.Fatalf("Join() = %v, want nil", err)
	}
	if err := errlist.Join(nil, nil); err != nil {
		t.Fatalf("Join(nil, nil) = %v, want nil", err)
	}
	one := errors.New("disk full")
	if err := errlist.Join(nil, one); err == nil || err.Error() != "disk full" || !errors.Is(err, one) {
		t.Fatalf("Join(nil, one) = %v", err)
	}
	err := errlist.Join(one, nil, fs.ErrNotExist, &codeError{"Throttling"})
	if got, want := err.Error(), "disk full; file does not exist; code Throttling"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	var ce *codeError
	if !errors.Is(err, one) || !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &ce) || ce.code != "Throttling" {
		t.Fatalf("the joined errors are not all reachable: %v", err)
	}
}
