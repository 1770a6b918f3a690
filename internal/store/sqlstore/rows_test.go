package sqlstore

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// headerCases seed FuzzEncodeHeaders: fields split on "\n", each
// "name:value,value"; a name without ':' has a nil list.
var headerCases = []string{
	"", "Content-Type:application/json", "X-Signature:abc\nUser-Agent:mailroom-bench\nContent-Length:1024",
	"A:1,2,3\nB:\nC", "X-Html:<b>&amp;</b>\nX-Quote:\"\\\x01\x7f", "X-Utf8:é \u2028 \u2029\nX-Bad:\xff\xfe",
	"Z:z\na:a\nM:m\n_:_\n-:-", "Empty:", "Nil",
}

// headersOf builds a header map from a headerCases-style string.
func headersOf(s string) map[string][]string {
	h := map[string][]string{}
	if s == "" {
		return h
	}
	for _, f := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(f, ":")
		if !ok {
			h[k] = nil
			continue
		}
		if v == "" {
			h[k] = []string{}
			continue
		}
		h[k] = strings.Split(v, ",")
	}
	return h
}

func checkEncodeHeaders(t *testing.T, h map[string][]string) {
	t.Helper()
	got, err := encodeHeaders(h)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) == 0 {
		if got != nil {
			t.Fatalf("no headers: got %q, want NULL", got)
		}
		return
	}
	want, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encodeHeaders(%q)\n got %s\nwant %s", h, got, want)
	}
}

func TestEncodeHeadersIsJSONMarshal(t *testing.T) {
	t.Parallel()
	for _, c := range headerCases {
		checkEncodeHeaders(t, headersOf(c))
	}
	many := map[string][]string{}
	for i := range 40 { // more keys than the stack buffer holds
		many[strings.Repeat("k", i+1)] = []string{strings.Repeat("v", i)}
	}
	checkEncodeHeaders(t, many)
}

// FuzzEncodeHeaders: encodeHeaders writes what json.Marshal writes.
func FuzzEncodeHeaders(f *testing.F) {
	for _, c := range headerCases {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkEncodeHeaders(t, headersOf(s))
	})
}

func BenchmarkEncodeHeaders(b *testing.B) {
	h := map[string][]string{"User-Agent": {"mailroom-bench"}, "Content-Type": {"application/json"}, "Content-Length": {"1024"},
		"X-Signature": {"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}, "Accept-Encoding": {"gzip"}}
	b.Run("encodeHeaders", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			encodeHeaders(h)
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			json.Marshal(h)
		}
	})
}
