package search

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mailroomhq/mailroom/internal/rawjson"
)

// Kind is the JSON type of a [Value].
type Kind int

// The kinds of value a condition compares.
const (
	String Kind = iota
	Number
	Bool
	Null
)

// Value is the right side of a condition: a JSON scalar.
type Value struct {
	kind Kind
	// s is the string; a number's canonical form ([canonNumber]); "true"
	// or "false"; "null".
	s string
	// text is the JSON text of the value, for [Value.String].
	text string
}

// Kind returns v's JSON type.
func (v Value) Kind() Kind { return v.kind }

// String returns v as JSON text.
func (v Value) String() string { return v.text }

// ParseValue reads a condition's value: JSON text of a scalar ("cus_123"
// in quotes, 9007199254740993, 1.5e3, true, false, null), or, when the
// text is not JSON, the text itself as a string (cus_123 without quotes).
// So 123 is a number and "123" a string. An object or array, or a quoted
// string that is not valid JSON, is an error.
func ParseValue(text string) (Value, error) {
	if len(text) > MaxValueLen {
		return Value{}, fmt.Errorf("value is longer than %d bytes", MaxValueLen)
	}
	if !utf8.ValidString(text) {
		return Value{}, fmt.Errorf("value is not valid UTF-8")
	}
	switch {
	case text == "true" || text == "false":
		return Value{kind: Bool, s: text, text: text}, nil
	case text == "null":
		return Value{kind: Null, s: text, text: text}, nil
	case isJSONNumber(text):
		return Value{kind: Number, s: canonNumber(text), text: text}, nil
	case strings.HasPrefix(text, `"`):
		var s string
		if err := json.Unmarshal([]byte(text), &s); err != nil {
			return Value{}, fmt.Errorf("value %s is not a JSON string: %v", text, err)
		}
		return Value{kind: String, s: s, text: text}, nil
	case (strings.HasPrefix(text, "{") || strings.HasPrefix(text, "[")) && json.Valid([]byte(text)):
		return Value{}, fmt.Errorf("value %s is an object or array; compare a string, number, true, false or null", text)
	}
	quoted, _ := json.Marshal(text)
	return Value{kind: String, s: text, text: string(quoted)}, nil
}

// matchRaw reports whether the raw JSON value raw (valid JSON) equals v.
func (v Value) matchRaw(raw []byte) bool {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return false
	}
	switch c := raw[0]; {
	case c == '"':
		if v.kind != String {
			return false
		}
		if inner := raw[1 : len(raw)-1]; rawjson.PlainASCII(inner) {
			return string(inner) == v.s
		}
		var s string
		return json.Unmarshal(raw, &s) == nil && s == v.s
	case c == '-' || c >= '0' && c <= '9':
		return v.kind == Number && canonNumber(string(raw)) == v.s
	case c == 't' || c == 'f':
		return v.kind == Bool && string(raw) == v.s
	case c == 'n':
		return v.kind == Null && string(raw) == "null"
	}
	return false
}

// isJSONNumber reports whether s is a number as JSON writes it:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		i = digits(s, i)
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		j := digits(s, i+1)
		if j == i+1 {
			return false
		}
		i = j
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := digits(s, i)
		if j == i {
			return false
		}
		i = j
	}
	return i == len(s)
}

// digits returns the index past the run of digits at s[i].
func digits(s string, i int) int {
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// maxExpDigits bounds the exponents [canonNumber] does arithmetic on.
const maxExpDigits = 15

// canonNumber returns a form of the JSON number s (valid JSON number
// text) that two numbers share exactly when their decimal values are
// equal: 1, 1.0, 10e-1 and 0.1e1 all give "1e0", and 9007199254740993
// never gives what 9007199254740992 gives. It is the sign, the
// significant digits without leading or trailing zeros, and the
// exponent; zero (and -0) is "0". A number whose exponent is written with
// more than [maxExpDigits] significant digits is beyond any real value
// and keeps its own text, so it equals only itself.
func canonNumber(s string) string {
	neg := strings.HasPrefix(s, "-")
	t := strings.TrimPrefix(s, "-")
	mant, exp := t, ""
	if i := strings.IndexAny(t, "eE"); i >= 0 {
		mant, exp = t[:i], t[i+1:]
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	ds := strings.TrimLeft(intPart+frac, "0")
	if ds == "" {
		return "0"
	}
	expNeg := strings.HasPrefix(exp, "-")
	exp = strings.TrimLeft(strings.TrimLeft(exp, "+-"), "0")
	if len(exp) > maxExpDigits {
		return "=" + s
	}
	e, _ := strconv.ParseInt("0"+exp, 10, 64)
	if expNeg {
		e = -e
	}
	e -= int64(len(frac))
	trimmed := strings.TrimRight(ds, "0")
	e += int64(len(ds) - len(trimmed))
	sign := ""
	if neg {
		sign = "-"
	}
	return sign + trimmed + "e" + strconv.FormatInt(e, 10)
}
