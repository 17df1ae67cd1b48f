package query

import (
	"errors"
	"fmt"
)

// ErrInvalid marks an error in what was asked, as opposed to a failure
// of the file or the system: an unknown option, an empty window, a
// filter that names what the file lacks. Test with errors.Is; the
// message says what is wrong.
var ErrInvalid = errors.New("invalid request")

// ErrNoWindow means a report asked for the instances of a mark name that
// the file does not have. It also matches ErrInvalid.
var ErrNoWindow = errors.New("no window of that name")

// Invalid returns an error with the message of fmt.Errorf(format,
// args...) that also matches ErrInvalid. The packages that build on
// query's reads (export) use it too.
func Invalid(format string, args ...any) error {
	return invalidError{error: fmt.Errorf(format, args...)}
}

// invalidAs is Invalid whose error also matches sentinel; the message
// is the same.
func invalidAs(sentinel error, format string, args ...any) error {
	return invalidError{fmt.Errorf(format, args...), sentinel}
}

type invalidError struct {
	error
	also error // another sentinel it matches, if any
}

func (e invalidError) Is(target error) bool {
	return target == ErrInvalid || (e.also != nil && target == e.also)
}
func (e invalidError) Unwrap() error { return e.error }
