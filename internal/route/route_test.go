package route

import (
	"net/http"
	"net/url"
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
	for _, tt := range []struct{ expr, body, want string }{
		{`body.id`, `{"id":"evt_1"}`, "evt_1"},
		{`body.id`, `{"id":42}`, "42"},
		{`headers["x-github-event"] + ":" + body.id`, `{"id":"a"}`, "push:a"},
	} {
		p, err := c.Compile(tt.expr)
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.EvalString(input("application/json", tt.body))
		if err != nil || got != tt.want {
			t.Errorf("%s on %s = %q, %v; want %q", tt.expr, tt.body, got, err, tt.want)
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
