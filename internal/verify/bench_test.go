package verify_test

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/verify"
)

// BenchmarkVerify measures one verification of a 1 KiB body per scheme,
// as the ingest handler runs it for every request.
//
//	go test -run '^$' -bench Verify ./internal/verify
func BenchmarkVerify(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1024)
	now := time.Now()
	for _, cfg := range []verify.Config{
		{Type: verify.TypeStripe, Secret: "whsec_bench"},
		{Type: verify.TypeGitHub, Secret: "bench"},
		{Type: verify.TypeHMAC, Secret: "bench", Header: "X-Signature"},
		{Type: verify.TypeStandardWebhooks, Secret: "whsec_" + base64.StdEncoding.EncodeToString([]byte("bench-secret"))},
	} {
		b.Run(cfg.Type, func(b *testing.B) {
			v, err := verify.New(cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			h := http.Header{}
			h.Set(verify.StandardWebhooksIDHeader, "msg_1")
			if err := verify.Sign(cfg, &verify.Message{Header: h, Body: body, Now: now}); err != nil {
				b.Fatal(err)
			}
			r := &verify.Request{Header: h, Body: body, Now: now}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := v.Verify(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
