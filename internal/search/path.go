// Package search is the body predicate of event search: a condition
// `path=value` that keeps the events whose request body holds value at
// path. The path is dotted, with array indexes (data.object.id,
// items[0].price, items.0.price); the value is a JSON scalar compared as
// JSON: a string, a number (by its exact decimal value, never rounded:
// 9007199254740993 is not 9007199254740992), true, false or null. The
// body is seen as filters and waits see it ([route.DecodeBodyWith]): JSON,
// or a form (a map of each field's first value, so strings only), or text,
// which has no paths.
//
// A [Filter] (one or more conditions, all of which must hold) implements
// [store.BodyFilter]; the API, the CLI and the MCP server parse what they
// are given with [ParseCond] and answer a bad condition with its error.
package search

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of a condition, so that a search stays cheap to parse and to
// evaluate.
const (
	// MaxPathLen is the longest path, in bytes.
	MaxPathLen = 256
	// MaxSteps is the most steps a path takes.
	MaxSteps = 32
	// MaxIndex is the largest array index a path names.
	MaxIndex = 999_999_999
	// MaxValueLen is the longest value, in bytes.
	MaxValueLen = 512
	// MaxConds is the most conditions one search combines.
	MaxConds = 8
)

// Step is one step of a [Path]: an object key, or an array index written
// in brackets. A key of digits also indexes an array (items.0 is items[0]
// when items is an array, and the key "0" when it is an object).
type Step struct {
	// Key is the object key; empty for an index step.
	Key string
	// Index is the array index of an index step.
	Index int
	// IsIndex is set for an index step ([n]).
	IsIndex bool
}

// Path is a parsed path: at least one step.
type Path []Step

// String renders p as [ParsePath] reads it: keys joined by dots, indexes
// in brackets.
func (p Path) String() string {
	var b strings.Builder
	for i, s := range p {
		switch {
		case s.IsIndex:
			b.WriteString("[" + strconv.Itoa(s.Index) + "]")
		case i > 0:
			b.WriteString("." + s.Key)
		default:
			b.WriteString(s.Key)
		}
	}
	return b.String()
}

// keyRune reports whether c may appear in a key: anything but the
// syntax (. [ ] = " \), spaces and control characters.
func keyRune(c rune) bool {
	switch c {
	case '.', '[', ']', '=', '"', '\\':
		return false
	}
	return !unicode.IsSpace(c) && !unicode.IsControl(c) && c != utf8.RuneError
}

// ParsePath reads a path: keys separated by dots, each optionally followed
// by array indexes in brackets ("data.object.id", "items[0].id",
// "[2]" for the third element of a top-level array). A key is one or more
// characters other than . [ ] = " \ , spaces and control characters. An
// index is a decimal number without leading zeros, at most [MaxIndex].
func ParsePath(s string) (Path, error) {
	if s == "" {
		return nil, fmt.Errorf("empty path; want a dotted path such as data.object.id")
	}
	if len(s) > MaxPathLen {
		return nil, fmt.Errorf("path is longer than %d bytes", MaxPathLen)
	}
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("path %q is not valid UTF-8", s)
	}
	var p Path
	i := 0
	// expectKey: at the start or after a dot, so a key must come (or,
	// at the start only, an index).
	expectKey := true
	for i < len(s) {
		c := s[i]
		switch {
		case c == '[':
			if expectKey && len(p) > 0 {
				return nil, fmt.Errorf("path %q: empty key at byte %d", s, i)
			}
			end := strings.IndexByte(s[i:], ']')
			if end < 0 {
				return nil, fmt.Errorf("path %q: [ at byte %d is not closed", s, i)
			}
			digits := s[i+1 : i+end]
			n, err := parseIndex(digits)
			if err != nil {
				return nil, fmt.Errorf("path %q: index [%s] at byte %d: %v", s, digits, i, err)
			}
			p = append(p, Step{Index: n, IsIndex: true})
			i += end + 1
			expectKey = false
		case c == '.':
			if expectKey {
				return nil, fmt.Errorf("path %q: empty key at byte %d", s, i)
			}
			i++
			expectKey = true
			if i == len(s) {
				return nil, fmt.Errorf("path %q ends with a dot", s)
			}
		default:
			if !expectKey {
				return nil, fmt.Errorf("path %q: want . or [ at byte %d", s, i)
			}
			start := i
			for i < len(s) {
				r, size := utf8.DecodeRuneInString(s[i:])
				if !keyRune(r) {
					break
				}
				i += size
			}
			if i == start {
				r, _ := utf8.DecodeRuneInString(s[i:])
				return nil, fmt.Errorf("path %q: %q at byte %d cannot be in a key (quote-free keys only: no . [ ] = \" \\ or spaces)", s, r, i)
			}
			p = append(p, Step{Key: s[start:i]})
			expectKey = false
		}
		if len(p) > MaxSteps {
			return nil, fmt.Errorf("path %q has more than %d steps", s, MaxSteps)
		}
	}
	return p, nil
}

// parseIndex reads an array index: digits without a leading zero (but
// "0"), at most [MaxIndex].
func parseIndex(s string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("want a number")
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("want a number")
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("leading zero")
	}
	if len(s) > len(strconv.Itoa(MaxIndex)) {
		return 0, fmt.Errorf("larger than %d", MaxIndex)
	}
	n, _ := strconv.Atoi(s)
	if n > MaxIndex {
		return 0, fmt.Errorf("larger than %d", MaxIndex)
	}
	return n, nil
}
