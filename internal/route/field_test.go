package route

import (
	"fmt"
	"testing"
)

var fieldExprs = []string{`body.id`, `body.data.object.id`, `has(body.type) ? body.type : ""`, `body.n`}

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
	`not json`,
	``,
}

// TestFieldFastPathMatchesCEL checks that every expression the fast path
// recognises yields, for each body, exactly what CEL yields.
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

// FuzzFieldFastPath checks the fast path against CEL on arbitrary bodies.
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
		}
	})
}
