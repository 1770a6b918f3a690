package route

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/mailroomhq/mailroom/internal/rawjson"
)

// fieldExpr recognises the expressions that dedup keys and event types use
// most (body.id, body.data.object.id, has(body.type) ? body.type : ""), so
// that they can be answered by scanning the raw JSON body for one field
// instead of decoding the whole body into maps and running CEL. The fast
// path must give exactly what CEL gives; whenever it is not sure (not a
// JSON object, a form body, a non-scalar value, a missing
// field without has()), it declines and CEL runs.
//
// A number is answered only when it is an integer written plainly that
// fits 64 bits (see [exactInteger]): its source text is then the key, which
// is what CEL renders too. Any other number (a fraction, an exponent, a
// larger integer, -0) declines, and CEL refuses it as a key.
type fieldExpr struct {
	path []string
	// orEmpty: has(path) ? path : "" (a missing last field yields "").
	orEmpty bool
}

var (
	fieldPathRE = regexp.MustCompile(`^body((?:\.[A-Za-z_][A-Za-z0-9_]*)+)$`)
	hasFieldRE  = regexp.MustCompile(`^has\(body((?:\.[A-Za-z_][A-Za-z0-9_]*)+)\)\s*\?\s*body((?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*:\s*""$`)
)

// parseFieldExpr returns the field expression expr is, or nil.
func parseFieldExpr(expr string) *fieldExpr {
	expr = strings.TrimSpace(expr)
	if m := fieldPathRE.FindStringSubmatch(expr); m != nil {
		return &fieldExpr{path: strings.Split(m[1][1:], ".")}
	}
	if m := hasFieldRE.FindStringSubmatch(expr); m != nil && m[1] == m[2] {
		return &fieldExpr{path: strings.Split(m[1][1:], "."), orEmpty: true}
	}
	return nil
}

// eval answers f for in as [Program.EvalString] would, or reports ok =
// false when CEL must decide.
func (f *fieldExpr) eval(in *Input) (string, bool) {
	if !in.validJSON() {
		return "", false // a form or text body: CEL decides
	}
	v := in.Body
	for i, key := range f.path {
		raw, found, ok := rawjson.Field(v, key)
		if !ok {
			return "", false
		}
		if !found {
			// has() tests only the last field: CEL selects the ones
			// before it strictly, so a missing one is its "no such key"
			// error, as it is without has().
			if f.orEmpty && i == len(f.path)-1 {
				return "", true
			}
			return "", false // CEL's "no such key" error
		}
		v = raw
	}
	return scalarString(v)
}

// scalarString renders a raw JSON scalar as EvalString renders the CEL
// value [DecodeJSON] decodes it to: a string's value, true or false, ""
// for null, and a number's source text when it is an exact integer.
func scalarString(raw []byte) (string, bool) {
	if len(raw) == 0 {
		return "", false
	}
	switch raw[0] {
	case '"':
		s := raw[1 : len(raw)-1]
		if bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) {
			return string(s), true
		}
		var out string
		if err := json.Unmarshal(raw, &out); err != nil {
			return "", false
		}
		return out, true
	case 't':
		return "true", true
	case 'f':
		return "false", true
	case 'n':
		return "", true
	case '{', '[':
		return "", false // CEL's type error
	}
	if _, ok := exactInteger(string(raw)); ok {
		return string(raw), true
	}
	return "", false // a double: CEL refuses it as a key
}
