package route

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mailroomhq/mailroom/internal/store"
)

func input(ct, body string) *Input {
	h := http.Header{}
	if ct != "" {
		h.Set("Content-Type", ct)
	}
	h.Set("X-GitHub-Event", "push")
	return NewInput("stripe", "/extra", url.Values{"a": {"1"}}, h, []byte(body))
}

func TestFilterMatch(t *testing.T) {
	t.Parallel()
	c, err := NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, expr, ct, body string
		want                 bool
	}{
		{"json prefix", `body.type.startsWith("checkout.session.")`, "application/json", `{"type":"checkout.session.completed"}`, true},
		{"json other", `body.type.startsWith("checkout.session.")`, "application/json", `{"type":"charge.refunded"}`, false},
		{"json without content type", `body.type == "x"`, "", `{"type":"x"}`, true},
		{"missing field no match", `body.type == "x"`, "application/json", `{"id":1}`, false},
		{"has macro", `has(body.data) && body.data.object.amount > 100.0`, "application/json", `{"data":{"object":{"amount":500}}}`, true},
		{"header", `headers["x-github-event"] == "push"`, "", `{}`, true},
		{"query and path", `query.a == "1" && path == "/extra" && source == "stripe"`, "", ``, true},
		{"form body", `body.status == "paid"`, "application/x-www-form-urlencoded", `status=paid&x=1`, true},
		{"json sent as a form (curl -d)", `body.id == "a"`, "application/x-www-form-urlencoded", `{"id":"a"}`, true},
		{"form that is not json", `body["{\"id\":\"a\""] == ""`, "application/x-www-form-urlencoded", `{"id":"a"`, true},
		{"integer against an int", `body.n == 9007199254740993`, "application/json", `{"n":9007199254740993}`, true},
		{"integer is exact", `body.n == 9007199254740992`, "application/json", `{"n":9007199254740993}`, false},
		{"integer against a double", `body.n > 100.5 && body.n == 500.0`, "application/json", `{"n":500}`, true},
		{"uint above int64", `body.n == 18446744073709551615u`, "application/json", `{"n":18446744073709551615}`, true},
		{"double stays double", `body.n == 1.5`, "application/json", `{"n":1.5e0}`, true},
		{"number beyond float64 keeps the body", `body.type == "x"`, "application/json", `{"n":1e700,"type":"x"}`, true},
		{"trailing data is not json", `body == "{} x"`, "application/json", `{} x`, true},
		{"raw text body", `body.contains("hello")`, "text/plain", `say hello`, true},
		{"raw always", `raw.size() == 2`, "application/json", `{}`, true},
		{"invalid json is raw", `body == "{nope"`, "application/json", `{nope`, true},
		{"non-bool filter result", `body`, "application/json", `{"a":1}`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := c.CompileFilter(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Match(input(tt.ct, tt.body)); got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	c, err := NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	for _, expr := range []string{`body.type ==`, `nosuchvar == 1`, `"a" + 1`, `path + "x"`} {
		if _, err := c.CompileFilter(expr); err == nil {
			t.Errorf("CompileFilter(%q) succeeded", expr)
		}
	}
}

func TestEvalString(t *testing.T) {
	t.Parallel()
	c, _ := NewCompiler()
	for _, tt := range []struct{ expr, ct, body, want string }{
		{`body.id`, "application/json", `{"id":"evt_1"}`, "evt_1"},
		{`body.id`, "application/json", `{"id":42}`, "42"},
		{`headers["x-github-event"] + ":" + body.id`, "application/json", `{"id":"a"}`, "push:a"},
		{`body.id`, "application/json", `{"id":9007199254740992}`, "9007199254740992"},
		{`body.id`, "application/json", `{"id":9007199254740993}`, "9007199254740993"},
		{`body["id"]`, "application/json", `{"id":9007199254740993}`, "9007199254740993"},
		{`body.id`, "application/json", `{"id":-9223372036854775808}`, "-9223372036854775808"},
		{`body.id`, "application/json", `{"id":18446744073709551615}`, "18446744073709551615"},
		{`body.id`, "application/x-www-form-urlencoded", `{"id":"a"}`, "a"},
		{`body.id`, "application/x-www-form-urlencoded", `id=a&id=b`, "a"},
		{`body.ok`, "application/json", `{"ok":true}`, "true"},
		{`body.id`, "application/json", `{"id":null}`, ""},
	} {
		p, err := c.Compile(tt.expr)
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.EvalString(input(tt.ct, tt.body))
		if err != nil || got != tt.want {
			t.Errorf("%s on %s (%s) = %q, %v; want %q", tt.expr, tt.body, tt.ct, got, err, tt.want)
		}
	}
}

// TestEvalStringRefusesDoubles checks that a key that would come from a
// double, whose text is lost, is an error rather than a rounded key.
func TestEvalStringRefusesDoubles(t *testing.T) {
	t.Parallel()
	c, _ := NewCompiler()
	for _, tt := range []struct{ expr, body string }{
		{`body.id`, `{"id":1.5}`},
		{`body["id"]`, `{"id":1.5}`},
		{`body.id`, `{"id":1e3}`},
		{`body.id`, `{"id":18446744073709551616}`},
		{`body.id`, `{"id":-0}`},
		{`body.id`, `{"id":1e700}`},
		{`body.a.b`, `{"a":{"b":9007199254740993.0}}`},
	} {
		p, err := c.Compile(tt.expr)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := p.EvalString(input("application/json", tt.body)); err == nil {
			t.Errorf("%s on %s = %q, want an error", tt.expr, tt.body, got)
		}
	}
}

func TestRouterFanOut(t *testing.T) {
	t.Parallel()
	c, _ := NewCompiler()
	r, err := NewRouter(c, []*store.Connection{
		{ID: "a", Source: "stripe", Destination: "billing", Filter: `body.type.startsWith("checkout.")`},
		{ID: "b", Source: "stripe", Destination: "audit"},
		{ID: "c", Source: "github", Destination: "ci"},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := r.Match(input("application/json", `{"type":"checkout.session.completed"}`))
	if len(got) != 2 || got[0].ID != "a" || got[1].ID != "b" {
		t.Errorf("match = %v", got)
	}
	got = r.Match(input("application/json", `{"type":"charge.refunded"}`))
	if len(got) != 1 || got[0].ID != "b" {
		t.Errorf("match = %v", got)
	}
	if _, err := NewRouter(c, []*store.Connection{{ID: "bad", Source: "s", Filter: "body.("}}); err == nil {
		t.Error("bad filter compiled")
	}
}

func FuzzFilterOverHostileBodies(f *testing.F) {
	for _, s := range []string{`{"type":"checkout.session.completed"}`, `[]`, `{"type":{"a":[1,2,{"b":null}]}}`, "\xff\xfe", `{"type":1e999}`, `a=b&c=%zz`} {
		f.Add(s, "application/json")
		f.Add(s, "application/x-www-form-urlencoded")
	}
	c, err := NewCompiler()
	if err != nil {
		f.Fatal(err)
	}
	progs := []*Program{}
	for _, e := range []string{`body.type.startsWith("checkout.")`, `has(body.data) && body.data.size() > 2`, `raw.matches("^a+$")`, `body.id`} {
		p, err := c.Compile(e)
		if err != nil {
			f.Fatal(err)
		}
		progs = append(progs, p)
	}
	f.Fuzz(func(t *testing.T, body, ct string) {
		in := input(ct, body)
		for _, p := range progs {
			p.Match(in)
			p.EvalString(in)
		}
	})
}

// TestCostLimit: an expression's evaluation stops at MaxCost, calibrated
// to about 10 ms, whatever the body. A quadratic filter over 300 items
// (90,000 comprehension steps, under the old limit of 1,000,000) used to
// run to its end and match; over 3,000 items it ran for about a second.
// Both now stop and do not match, while the same filter over a few items
// still matches.
func TestCostLimit(t *testing.T) {
	t.Parallel()
	c, err := NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.CompileFilter(`body.items.all(a, body.items.all(b, true))`)
	if err != nil {
		t.Fatal(err)
	}
	items := func(n int) string {
		return `{"items":[` + strings.TrimSuffix(strings.Repeat(`{"a":1},`, n), ",") + `]}`
	}
	for _, tt := range []struct {
		items int
		stops bool
	}{{3, false}, {300, true}, {3000, true}} {
		in := input("application/json", items(tt.items))
		_, err := p.Eval(in)
		if stopped := err != nil && strings.Contains(err.Error(), "cost limit exceeded"); stopped != tt.stops {
			t.Errorf("%d items: evaluation error %v, want stopped at the cost limit: %v", tt.items, err, tt.stops)
		}
		if got := p.Match(in); got == tt.stops {
			t.Errorf("%d items: Match = %v, want %v", tt.items, got, !tt.stops)
		}
	}

	// A substring search is charged by the KiB it reads, so one over a
	// large body fits (CEL's own charge, a tenth of each length
	// multiplied, would refuse it at 100 KiB).
	contains, err := c.CompileFilter(`raw.contains("needle-in-the-body")`)
	if err != nil {
		t.Fatal(err)
	}
	big := input("text/plain", strings.Repeat("x", 4<<20)+"needle-in-the-body")
	if _, err := contains.Eval(big); err != nil || !contains.Match(big) {
		t.Errorf("raw.contains over 4 MiB: %v, want a match", err)
	}
}

func TestValueString(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   any
		want string
	}{
		{"abc", "abc"},
		{json.Number("9007199254740993"), "9007199254740993"},
		{int64(9007199254740993), "9007199254740993"},
		{uint64(18446744073709551615), "18446744073709551615"},
		{json.Number("1.0"), "1"},
		{1.0, "1"},
		{json.Number("1.5"), "1.5"},
		{json.Number("1e20"), "1e+20"},
		{true, "true"},
	} {
		if got := ValueString(tt.in); got != tt.want {
			t.Errorf("ValueString(%#v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestMatchCost: the cost of an evaluation is reported, and one stopped at
// the limit reports more than MaxCost.
func TestMatchCost(t *testing.T) {
	t.Parallel()
	c, err := NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.CompileFilter(`body.items.all(a, body.items.all(b, true))`)
	if err != nil {
		t.Fatal(err)
	}
	items := func(n int) string {
		return `{"items":[` + strings.TrimSuffix(strings.Repeat(`{"a":1},`, n), ",") + `]}`
	}
	if ok, cost := p.MatchCost(input("application/json", items(3))); !ok || cost == 0 || cost > MaxCost {
		t.Errorf("3 items: match %v, cost %d", ok, cost)
	}
	if ok, cost := p.MatchCost(input("application/json", items(300))); ok || cost <= MaxCost {
		t.Errorf("300 items: match %v, cost %d, want stopped over %d", ok, cost, MaxCost)
	}
}
