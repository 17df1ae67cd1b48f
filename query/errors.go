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

// Invalid returns an error with the message of fmt.Errorf(format,
// args...) that also matches ErrInvalid. The packages that build on
// query's reads (export) use it too.
func Invalid(format string, args ...any) error {
	return invalidError{fmt.Errorf(format, args...)}
}

type invalidError struct{ error }

func (e invalidError) Is(target error) bool { return target == ErrInvalid }
func (e invalidError) Unwrap() error        { return e.error }
