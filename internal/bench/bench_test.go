package bench

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/verify"
)

// TestLoadSignsForEveryProvider sends a short load per provider to a
// server that verifies each request with the provider's verifier and
// forwards it to a Sink, and checks that every request passed and arrived.
func TestLoadSignsForEveryProvider(t *testing.T) {
	t.Parallel()
	for _, name := range Providers() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			prov, err := NewProvider(name, "")
			if err != nil {
				t.Fatal(err)
			}
			v, err := verify.New(prov.Verify, nil)
			if err != nil {
				t.Fatal(err)
			}
			sink := &Sink{}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				if err := v.Verify(verify.NewRequest(r, body, time.Now())); err != nil {
					http.Error(w, err.Error(), http.StatusUnauthorized)
					return
				}
				if r.URL.Path != "/e/src" || len(body) != 300 {
					http.Error(w, "bad path or size", http.StatusBadRequest)
					return
				}
				sink.ServeHTTP(w, httptest.NewRequest("POST", "/", bytes.NewReader(body)))
			}))
			t.Cleanup(srv.Close)
			res, err := Load(context.Background(), &Options{
				Target: srv.URL, Source: "src", Provider: prov, Connections: 3, Duration: 100 * time.Millisecond, Size: 300,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.OK == 0 || res.OK != res.Sent {
				t.Fatalf("%d of %d requests answered 2xx: %v %s", res.OK, res.Sent, res.Statuses, res.FirstError)
			}
			st := sink.Stats()
			if st.Received != res.OK || st.Lag.N != res.OK {
				t.Fatalf("sink received %d (%d with a lag), want %d", st.Received, st.Lag.N, res.OK)
			}
		})
	}
}

// TestLoadOpenLoop checks that a rate paces the requests.
func TestLoadOpenLoop(t *testing.T) {
	t.Parallel()
	prov, err := NewProvider("hmac", "")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(BareHandler())
	t.Cleanup(srv.Close)
	res, err := Load(context.Background(), &Options{
		Target: srv.URL, Source: "src", Provider: prov, Connections: 4, Duration: 500 * time.Millisecond, Rate: 200,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK < 80 || res.OK > 110 {
		t.Fatalf("sent %d requests at 200/s for 0.5s, want about 100", res.OK)
	}
}

func TestReadResponse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     string
		status int
		keep   bool
	}{
		{"length", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", 200, true},
		{"chunked", "HTTP/1.1 503 Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 503, true},
		{"close", "HTTP/1.1 413 Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 413, false},
		{"no content", "HTTP/1.1 204 No Content\r\n\r\n", 204, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, keep, err := readResponse(bufioReader(tt.in))
			if err != nil || status != tt.status || keep != tt.keep {
				t.Fatalf("readResponse = %d, %v, %v; want %d, %v", status, keep, err, tt.status, tt.keep)
			}
		})
	}
}

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }
