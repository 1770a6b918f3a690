package route

import (
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
