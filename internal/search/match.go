package search

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/mailroomhq/mailroom/internal/rawjson"
	"github.com/mailroomhq/mailroom/internal/route"
	"github.com/mailroomhq/mailroom/internal/store"
)

// Cond is one condition: the body holds Value at Path.
type Cond struct {
	Path  Path
	Value Value
}

// String renders c as [ParseCond] reads it.
func (c Cond) String() string { return c.Path.String() + "=" + c.Value.String() }

// ParseCond reads "path=value": a path ([ParsePath]), an equals sign, and
// a value ([ParseValue]). Spaces around either side are ignored.
func ParseCond(s string) (Cond, error) {
	path, value, ok := strings.Cut(s, "=")
	if !ok {
		return Cond{}, fmt.Errorf("%q is not path=value (for example data.object.customer=cus_123)", s)
	}
	p, err := ParsePath(strings.TrimSpace(path))
	if err != nil {
		return Cond{}, err
	}
	v, err := ParseValue(strings.TrimSpace(value))
	if err != nil {
		return Cond{}, fmt.Errorf("%s: %w", p, err)
	}
	return Cond{Path: p, Value: v}, nil
}

// Filter is a search's conditions, all of which must hold. It implements
// [store.BodyFilter].
type Filter []Cond

var _ store.BodyFilter = Filter(nil)

// ParseFilter reads each condition with [ParseCond]; at most [MaxConds].
func ParseFilter(conds []string) (Filter, error) {
	if len(conds) > MaxConds {
		return nil, fmt.Errorf("%d conditions; at most %d", len(conds), MaxConds)
	}
	f := make(Filter, 0, len(conds))
	for _, s := range conds {
		c, err := ParseCond(s)
		if err != nil {
			return nil, err
		}
		f = append(f, c)
	}
	return f, nil
}

// String renders f's conditions joined by " and ".
func (f Filter) String() string {
	parts := make([]string, len(f))
	for i, c := range f {
		parts[i] = c.String()
	}
	return strings.Join(parts, " and ")
}

// MatchBody implements [store.BodyFilter]: every condition holds on the
// body as filters see it (JSON, a form, or text, by [route.DecodeBodyWith]).
func (f Filter) MatchBody(contentType string, body []byte) bool {
	decoded := route.DecodeBodyWith(contentType, body, rawJSON)
	for _, c := range f {
		if !c.match(decoded) {
			return false
		}
	}
	return true
}

var errNotJSON = errors.New("not JSON")

// rawJSON keeps a valid JSON body raw: the conditions walk it by path and
// compare numbers by their text, never through float64.
func rawJSON(b []byte) (any, error) {
	if !json.Valid(b) {
		return nil, errNotJSON
	}
	return json.RawMessage(b), nil
}

// match reports whether c holds on a body decoded by [route.DecodeBodyWith]
// with [rawJSON].
func (c Cond) match(decoded any) bool {
	switch v := decoded.(type) {
	case json.RawMessage:
		raw, ok := lookup(v, c.Path)
		return ok && c.Value.matchRaw(raw)
	case map[string]string: // a form: one level of string fields
		if len(c.Path) != 1 || c.Path[0].IsIndex || c.Value.kind != String {
			return false
		}
		got, ok := v[c.Path[0].Key]
		return ok && got == c.Value.s
	}
	return false // text has no paths
}

// lookup follows p through the valid JSON value raw, in one pass that
// skips what the path does not enter. A key step reads an object (the
// last of repeated keys, as the decoder of filters keeps), or an array
// when the key is an index; an index step reads an array.
func lookup(raw []byte, p Path) ([]byte, bool) {
	for _, st := range p {
		i := rawjson.SkipSpace(raw, 0)
		if i >= len(raw) {
			return nil, false
		}
		var ok bool
		switch raw[i] {
		case '{':
			if st.IsIndex {
				return nil, false
			}
			raw, ok, _ = rawjson.Field(raw[i:], st.Key)
		case '[':
			n := st.Index
			if !st.IsIndex {
				var err error
				if n, err = parseIndex(st.Key); err != nil {
					return nil, false
				}
			}
			raw, ok, _ = rawjson.Elem(raw[i:], n)
		}
		if !ok {
			return nil, false
		}
	}
	return raw, true
}
