package route

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/mailroomhq/mailroom/internal/store"
)

// benchBody is a 1 KiB Stripe-like event.
var benchBody = []byte(`{"id":"evt_1NbH2cLkdIwHu7ix","object":"event","type":"checkout.session.completed","data":{"object":{"id":"cs_test_a1","amount_total":4200,"currency":"eur","payment_link":"plink_1"}},"pad":"` +
	strings.Repeat("x", 800) + `"}`)

func benchInput() *Input {
	h := http.Header{"Content-Type": {"application/json"}, "Stripe-Signature": {"t=1,v1=00"}}
	return NewInput("stripe", "", nil, h, benchBody)
}

// BenchmarkDedupKey measures a dedup key per request: body.id through the
// raw-JSON fast path, and through CEL (a fresh input each time, as ingest
// builds one per request).
//
//	go test -run '^$' -bench 'DedupKey|Filter' ./internal/route
func BenchmarkDedupKey(b *testing.B) {
	c, err := NewCompiler()
	if err != nil {
		b.Fatal(err)
	}
	p, err := c.Compile(`body.id`)
	if err != nil {
		b.Fatal(err)
	}
	for _, bb := range []struct {
		name string
		prg  *Program
	}{{"fast", p}, {"cel", &Program{expr: p.expr, prg: p.prg}}} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if k, err := bb.prg.EvalString(benchInput()); err != nil || k != "evt_1NbH2cLkdIwHu7ix" {
					b.Fatal(k, err)
				}
			}
		})
	}
	// What ingest asks of each request of a source with the default
	// event type: the dedup key, then the type, of one input.
	typ, err := c.Compile(`has(body.type) ? body.type : ""`)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("fast-key-and-type", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			in := benchInput()
			k, err := p.EvalString(in)
			if err != nil || k != "evt_1NbH2cLkdIwHu7ix" {
				b.Fatal(k, err)
			}
			if t, err := typ.EvalString(in); err != nil || t != "checkout.session.completed" {
				b.Fatal(t, err)
			}
		}
	})
}

// BenchmarkFilter measures routing one request through a source with
// three connections, two with CEL filters.
func BenchmarkFilter(b *testing.B) {
	c, err := NewCompiler()
	if err != nil {
		b.Fatal(err)
	}
	r, err := NewRouter(c, []*store.Connection{
		{ID: "a", Source: "stripe", Destination: "a", Filter: `body.type.startsWith("checkout.session.")`},
		{ID: "b", Source: "stripe", Destination: "b", Filter: `body.data.object.amount_total > 1000 && headers["content-type"] == "application/json"`},
		{ID: "c", Source: "stripe", Destination: "c"},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if n := len(r.Match(benchInput())); n != 3 {
			b.Fatalf("%d matches, want 3", n)
		}
	}
}

// costShapes are expressions whose evaluation time per unit of CEL cost
// is high: comprehensions over a large decoded body, string scans over a
// large raw body, regular expressions, list building. They calibrate
// [MaxCost].
var costShapes = []struct {
	name, expr string
}{
	{"nested-all", `body.items.all(a, body.items.all(b, true))`},
	{"exists-field", `body.items.exists(a, a.sku == "none")`},
	{"map-filter", `body.items.map(a, a.sku).filter(s, s.startsWith("zz")).size() > 0`},
	{"contains-raw", `raw.contains("needle-not-there")`},
	{"matches-raw", `raw.matches("a.*b.*c.*needle")`},
	{"string-concat", `body.items.map(a, a.sku + a.sku).size() > 0`},
}

// costBody is a 3,000-item JSON body (about 100 KiB).
func costBody() []byte {
	var b strings.Builder
	b.WriteString(`{"items":[`)
	for i := range 3000 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"sku":"sku_%05d","qty":%d,"tags":["a","b"]}`, i, i%7)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// BenchmarkCostUnit measures the evaluation time per unit of CEL cost for
// each of [costShapes] over [costBody], each running to MaxCost or to its
// end, as routing compiles them. The slowest shape's ns/unit times MaxCost
// is the worst-case time of one evaluation.
//
//	go test -run '^$' -bench CostUnit -benchtime 20x ./internal/route
func BenchmarkCostUnit(b *testing.B) {
	c, err := NewCompiler()
	if err != nil {
		b.Fatal(err)
	}
	body := costBody()
	for _, sh := range costShapes {
		b.Run(sh.name, func(b *testing.B) {
			ast, iss := c.env.Compile(sh.expr)
			if iss.Err() != nil {
				b.Fatal(iss.Err())
			}
			prg, err := c.env.Program(ast, programOptions...)
			if err != nil {
				b.Fatal(err)
			}
			in := NewInput("s", "", nil, http.Header{"Content-Type": {"application/json"}}, body)
			in.Prepare()
			var units uint64
			for b.Loop() {
				_, det, _ := prg.Eval(in.activation())
				if det != nil && det.ActualCost() != nil {
					units += *det.ActualCost()
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(units), "ns/unit")
			b.ReportMetric(float64(units)/float64(b.N), "units/op")
		})
	}
}
