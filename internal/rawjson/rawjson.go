// Package rawjson reads one value out of valid JSON text without decoding
// the rest: the scan the dedup-key fast path (internal/route) and event
// search (internal/search) both use to skip what a path does not enter.
// Every function expects valid JSON (check with json.Valid first); on
// anything else the answers are unspecified but never out of bounds.
package rawjson

import (
	"bytes"
	"encoding/json"
)

// Field returns the raw value of key in the JSON object obj: of the last
// key that decodes to key, as encoding/json keeps when a key repeats.
// isObject is false when obj (after white space) is not an object.
func Field(obj []byte, key string) (raw []byte, found, isObject bool) {
	i := SkipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return nil, false, false
	}
	i = SkipSpace(obj, i+1)
	if i >= len(obj) || obj[i] == '}' {
		return nil, false, true
	}
	for i < len(obj) && obj[i] == '"' {
		end := SkipString(obj, i)
		k := obj[i+1 : max(end-1, i+1)]
		i = SkipSpace(obj, SkipSpace(obj, end)+1) // past ':'
		if i >= len(obj) {
			break
		}
		start := i
		i = SkipValue(obj, i)
		if KeyEquals(k, key) {
			raw, found = obj[start:i], true
		}
		i = SkipSpace(obj, i)
		if i >= len(obj) || obj[i] == '}' {
			break
		}
		i = SkipSpace(obj, i+1) // past ','
	}
	return raw, found, true
}

// Elem returns element n of the JSON array arr. isArray is false when arr
// (after white space) is not an array.
func Elem(arr []byte, n int) (raw []byte, found, isArray bool) {
	i := SkipSpace(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return nil, false, false
	}
	i = SkipSpace(arr, i+1)
	if i >= len(arr) || arr[i] == ']' {
		return nil, false, true
	}
	for e := 0; i < len(arr); e++ {
		start := i
		i = SkipValue(arr, i)
		if e == n {
			return arr[start:i], true, true
		}
		i = SkipSpace(arr, i)
		if i >= len(arr) || arr[i] == ']' {
			break
		}
		i = SkipSpace(arr, i+1) // past ','
	}
	return nil, false, true
}

// KeyEquals reports whether the raw key k (a JSON string's inside, without
// its quotes) decodes to key, as encoding/json decodes it.
func KeyEquals(k []byte, key string) bool {
	if PlainASCII(k) {
		return string(k) == key
	}
	var s string
	return json.Unmarshal(append(append([]byte{'"'}, k...), '"'), &s) == nil && s == key
}

// PlainASCII reports whether b is printable ASCII without a backslash: a
// JSON string's inside that decodes to itself.
func PlainASCII(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c >= 0x80 || c == '\\' {
			return false
		}
	}
	return true
}

// SkipSpace returns the index of the first byte at or after i that is not
// JSON white space.
func SkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// SkipValue returns the index just past the JSON value at b[i].
func SkipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return SkipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = SkipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default: // number, true, false, null
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return i
			}
			i++
		}
		return i
	}
}

// SkipString returns the index just past the JSON string starting at b[i].
// It looks for the closing quote with [bytes.IndexByte] (vectorised), so a
// long string costs a fraction of a byte-by-byte scan.
func SkipString(b []byte, i int) int {
	for i++; i < len(b); {
		q := bytes.IndexByte(b[i:], '"')
		if q < 0 {
			break // unterminated: see skipStringSlow
		}
		e := bytes.IndexByte(b[i:i+q], '\\')
		if e < 0 {
			return i + q + 1
		}
		i += e + 2 // the backslash and the byte it escapes
	}
	return skipStringSlow(b, i)
}

// skipStringSlow is SkipString byte by byte from b[i], inside a string:
// what it returns past the end of invalid text (len(b), or len(b)+1 after
// a final backslash) is what the callers were written against.
func skipStringSlow(b []byte, i int) int {
	for ; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}
