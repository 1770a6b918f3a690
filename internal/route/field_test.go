package route

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

var fieldExprs = []string{`body.id`, `body.data.object.id`, `has(body.type) ? body.type : ""`, `body.n`, `has(body.data.object.id) ? body.data.object.id : ""`}

var fieldBodies = []string{
	`{"id":"evt_1","type":"a.b"}`,
	` { "id" : "evt_2" , "type" : null } `,
	`{"id":"e\u00e9\n","type":"x"}`,
	`{"id":1234567890123456789,"type":true}`,
	`{"id":1.5e3,"n":-0.0}`,
	`{"id":"first","id":"last"}`,
	`{"data":{"object":{"id":"cs_1","x":[1,{"id":"no"}]}},"id":"top"}`,
	`{"data":{"object":"str"}}`,
	`{"data":[1,2]}`,
	`{"id":{"nested":1},"type":["a"]}`,
	`{"other":"x"}`,
	`{}`,
	`[{"id":"x"}]`,
	`"string"`,
	`{"id":"x"`,
	`{"i\"d":"esc","id":"plain"}`,
	`{"id":"\xff\xfe"}`,
	`{"type":"a\"b","id":"q\\"}`,
	`{"id":1e400}`,
	`{"id":9007199254740993}`,
	`{"id":-9223372036854775808,"n":18446744073709551615}`,
	`{"id":18446744073709551616,"n":-9223372036854775809}`,
	`{"id":-0,"n":1.0}`,
	`{"id":0.1000000000000000055511151231257827}`,
	`{"id":"a"} `,
	`{"id":"a"} x`,
	`id=a&type=b`,
	`not json`,
	``,
}

// TestFieldFastPathMatchesCEL checks that every expression the fast path
// recognises yields, for each body, exactly what CEL yields, and that
// both yield a number's exact source text or nothing.
func TestFieldFastPathMatchesCEL(t *testing.T) {
	t.Parallel()
	c, err := NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	for _, expr := range fieldExprs {
		p, err := c.Compile(expr)
		if err != nil {
			t.Fatal(err)
		}
		if p.field == nil {
			t.Fatalf("%s: no fast path", expr)
		}
		slow := &Program{expr: p.expr, prg: p.prg}
		for _, ct := range []string{"application/json", "", "application/x-www-form-urlencoded"} {
			for _, body := range fieldBodies {
				t.Run(fmt.Sprintf("%s/%s/%s", expr, ct, body), func(t *testing.T) {
					checkSame(t, p, slow, ct, body)
				})
			}
		}
	}
}

func checkSame(t *testing.T, fast, slow *Program, ct, body string) {
	t.Helper()
	got, gerr := fast.EvalString(input(ct, body))
	want, werr := slow.EvalString(input(ct, body))
	if got != want || (gerr == nil) != (werr == nil) {
		t.Errorf("%s on %q (%s): fast = %q, %v; CEL = %q, %v", fast.expr, body, ct, got, gerr, want, werr)
	}
	if text, ok := sourceNumber(fast.field.path, body); ok && gerr == nil && got != text {
		t.Errorf("%s on %q: yields %q, but the number is written %s", fast.expr, body, got, text)
	}
}

// sourceNumber is the oracle for numbers: when body is one JSON value whose
// field at path is a number, it returns that number as written in body.
// A key taken from a number must be this text, or not be taken at all.
func sourceNumber(path []string, body string) (string, bool) {
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil || dec.More() || !json.Valid([]byte(body)) {
		return "", false
	}
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return "", false
		}
		if v, ok = m[k]; !ok {
			return "", false
		}
	}
	n, ok := v.(json.Number)
	if !ok {
		return "", false
	}
	if !bytes.Contains([]byte(body), []byte(n)) {
		panic("json.Number is not the source text")
	}
	return string(n), true
}

func TestParseFieldExpr(t *testing.T) {
	t.Parallel()
	for expr, want := range map[string]bool{
		`body.id`: true, `body.data.object.id`: true, `has(body.type) ? body.type : ""`: true,
		`body["id"]`: false, `has(body.type) ? body.kind : ""`: false, `headers["x-id"]`: false, `body.id + "x"`: false, `body`: false,
	} {
		if got := parseFieldExpr(expr) != nil; got != want {
			t.Errorf("parseFieldExpr(%q) recognised = %v, want %v", expr, got, want)
		}
	}
}

// FuzzFieldFastPath checks the fast path against CEL on arbitrary bodies,
// and both against the exact source text of numbers.
func FuzzFieldFastPath(f *testing.F) {
	for _, b := range fieldBodies {
		f.Add(b)
	}
	c, err := NewCompiler()
	if err != nil {
		f.Fatal(err)
	}
	var progs [][2]*Program
	for _, expr := range fieldExprs {
		p, err := c.Compile(expr)
		if err != nil {
			f.Fatal(err)
		}
		progs = append(progs, [2]*Program{p, {expr: p.expr, prg: p.prg}})
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, pp := range progs {
			checkSame(t, pp[0], pp[1], "application/json", body)
			checkSame(t, pp[0], pp[1], "application/x-www-form-urlencoded", body)
		}
	})
}
