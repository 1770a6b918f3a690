package route

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/url"
	"strconv"
	"strings"
)

// decodeBody returns the body as expressions see it:
//
//   - JSON, as maps and lists, when the body is valid JSON and either starts
//     with { or [ or the Content-Type ends in json. The Content-Type does not
//     decide alone: curl -d sends JSON as application/x-www-form-urlencoded,
//     and a real form is never a JSON object or array.
//   - A form, as a map of each field's first value, when the Content-Type is
//     application/x-www-form-urlencoded (Twilio, Slack commands) and the
//     body is not JSON.
//   - Anything else, or JSON that does not parse, as the raw string.
//
// JSON numbers are decoded exactly by [jsonNumber].
func decodeBody(contentType string, body []byte) any {
	return DecodeBodyWith(contentType, body, DecodeJSON)
}

// DecodeBodyWith returns the body as expressions see it (see
// [Input.Decoded]) with the JSON decoded by decodeJSON: the one rule of
// which body is JSON, which a form and which text, for callers that read
// a JSON body their own way (event search walks it raw to compare numbers
// by their exact text). A body decodeJSON refuses is not JSON.
func DecodeBodyWith(contentType string, body []byte, decodeJSON func([]byte) (any, error)) any {
	mt, _, _ := mime.ParseMediaType(contentType)
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') || strings.HasSuffix(mt, "json") {
		if v, err := decodeJSON(body); err == nil {
			return v
		}
	}
	if mt == "application/x-www-form-urlencoded" {
		if vals, err := url.ParseQuery(string(body)); err == nil {
			return firstValues(vals)
		}
	}
	return string(body)
}

// DecodeJSON decodes one JSON value as expressions see a JSON body: maps,
// lists, and numbers that keep their exact value where they can (see
// [jsonNumber]) instead of passing through float64. Whatever evaluates
// CEL over JSON, or compares values from it, decodes with it.
func DecodeJSON(body []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode json body: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("decode json body: data after the value")
	}
	return exactNumbers(v), nil
}

// exactNumbers replaces, in place, every json.Number in v by [jsonNumber]
// of it, and returns v.
func exactNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		return jsonNumber(string(x))
	case map[string]any:
		for k, e := range x {
			x[k] = exactNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = exactNumbers(e)
		}
	}
	return v
}

// jsonNumber is how expressions see a JSON number: an int64 (CEL int) or,
// above its range, a uint64 (CEL uint) when the number is an integer written
// plainly, so it keeps its exact value and text; otherwise a float64 (CEL
// double), which may be rounded (9007199254740993 stays exact as an int, but
// 9007199254740993.0 becomes 9007199254740992). A number beyond the range
// of float64 (1e700) becomes an infinity rather than failing the body.
func jsonNumber(text string) any {
	if v, ok := exactInteger(text); ok {
		return v
	}
	f, _ := strconv.ParseFloat(text, 64) // ±Inf with a range error beyond float64
	return f
}

// exactInteger parses text as an int64, or a uint64 above int64's range,
// when text is exactly how that integer prints: digits with an optional
// minus, no fraction, exponent or leading zero, and not "-0". Such a
// number's decimal text is its exact value, and the dedup key or event
// type it yields.
func exactInteger(text string) (any, bool) {
	if i, err := strconv.ParseInt(text, 10, 64); err == nil && strconv.FormatInt(i, 10) == text {
		return i, true
	}
	if u, err := strconv.ParseUint(text, 10, 64); err == nil && strconv.FormatUint(u, 10) == text {
		return u, true
	}
	return nil, false
}

// ValueString renders a value as waits compare them (a wait's match
// value against the value at the same path of an event's body): a value
// decoded by [DecodeJSON] or [Input.Decoded], or a json.Number. Strings
// are themselves; numbers are their exact integer text when they are
// integers (9007199254740993, and 1.0 as 1), else Go's formatting of the
// double; anything else is formatted by fmt.
func ValueString(v any) string {
	if n, ok := v.(json.Number); ok {
		v = jsonNumber(string(n))
	}
	if f, ok := v.(float64); ok && f == math.Trunc(f) && math.Abs(f) < 1<<63 {
		v = int64(f)
	}
	return fmt.Sprint(v)
}

// firstValues maps each name to its first value.
func firstValues(v url.Values) map[string]string {
	out := make(map[string]string, len(v))
	for k, vs := range v {
		if len(vs) > 0 {
			out[k] = vs[0]
		}
	}
	return out
}
