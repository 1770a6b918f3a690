package config

import (
	"cmp"
	"errors"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem in a config: where it is and what is wrong.
// [Parse], [Load] and [Config.Validate] report every problem they find,
// each as an *Error, joined with [errors.Join]; use [errors.As] to get at
// the first one, or walk the joined errors with an Unwrap() []error
// assertion.
type Error struct {
	// File is the config file's name as given to [Load] or [Parse]. It is
	// empty when the value did not come from a file (defaults, environment
	// variables, command-line flags).
	File string
	// Line is the 1-based line of the offending key or list item, or 0
	// when unknown.
	Line int
	// Field is the path of the offending field, such as
	// "sources[1].verify.type", or empty for a problem with the file as a
	// whole (a YAML syntax error).
	Field string
	// Err is what is wrong.
	Err error
}

// Error formats e as "file:line: field: reason", leaving out the parts
// that are unknown, e.g.
//
//	mailroom.yaml:12: sources[1].verify.type: unknown type "strpe"
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":")
			b.WriteString(strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("invalid")
	}
	return b.String()
}

// Unwrap returns the underlying reason.
func (e *Error) Unwrap() error { return e.Err }

// joinErrors sorts errs by line (problems without a line last, keeping
// their order) and joins them. It returns nil for none.
func joinErrors(errs []*Error) error {
	if len(errs) == 0 {
		return nil
	}
	sorted := slices.Clone(errs)
	slices.SortStableFunc(sorted, func(a, b *Error) int {
		if (a.Line == 0) != (b.Line == 0) {
			if a.Line == 0 {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.Line, b.Line)
	})
	out := make([]error, len(sorted))
	for i, e := range sorted {
		out[i] = e
	}
	return errors.Join(out...)
}

// fieldError is a reason that names a subfield of the field an error is
// reported on, such as the "secret" in verify.New's "verify.secret: ...".
// Its text is the reason without the field, so the field is not named
// twice; Unwrap keeps the original error reachable with errors.Is/As.
type fieldError struct {
	msg string
	err error
}

func (e *fieldError) Error() string { return e.msg }
func (e *fieldError) Unwrap() error { return e.err }
