// Package errlist aggregates errors with go-multierror and renders the
// aggregate on one line, as log lines, API answers and CLI messages want it.
package errlist

import (
	"strings"

	"github.com/hashicorp/go-multierror"
)

// Join aggregates the errors that are not nil, or returns nil when there is
// none. errors.Is and errors.As see every error joined.
func Join(errs ...error) error {
	m := multierror.Append(nil, errs...)
	m.ErrorFormat = Format
	return m.ErrorOrNil()
}

// Format is a multierror.ErrorFormatFunc: the errors on one line, "; "
// between them.
func Format(errs []error) string {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// OneLine returns the errors gathered in m rendered on one line, or nil
// when there are none: the form every engine reports several failures in.
func OneLine(m *multierror.Error) error {
	if m == nil {
		return nil
	}
	m.ErrorFormat = Format
	return m.ErrorOrNil()
}
