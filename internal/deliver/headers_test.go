package deliver_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/mailroomhq/mailroom/internal/deliver"
	"github.com/mailroomhq/mailroom/internal/store"
)

// TestResponseHeadersBounded: a destination answering with ~3 MB of
// headers gets an attempt whose stored headers stay within the caps, as
// its body does, with the drop noted.
func TestResponseHeadersBounded(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	junk := strings.Repeat("j", 1000)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("X-Reply", "thanks")
		for i := range 3000 {
			w.Header().Set(fmt.Sprintf("X-Junk-%04d", i), junk)
		}
		w.Write([]byte("ok"))
	})
	start(t, s, nil)
	addDest(t, s, &store.Destination{Name: "app", URL: rc.srv.URL + "/hooks"})
	res := ingest(t, s, []byte(`{}`), "application/json", "app")
	waitStatus(t, s, res.DeliveryIDs[0], store.DeliverySucceeded)

	as := listAttempts(t, s, res.DeliveryIDs[0])
	if len(as) != 1 {
		t.Fatalf("%d attempts, want 1", len(as))
	}
	h := as[0].ResponseHeaders
	lines, size := 0, 0
	for k, vs := range h {
		if k == deliver.TruncatedHeader {
			continue
		}
		lines += len(vs)
		for _, v := range vs {
			size += len(k) + len(v)
		}
	}
	if lines > deliver.DefaultMaxResponseHeaders || size > deliver.DefaultMaxResponseHeaderBytes {
		t.Errorf("stored %d header lines, %d bytes; caps are %d and %d", lines, size, deliver.DefaultMaxResponseHeaders, deliver.DefaultMaxResponseHeaderBytes)
	}
	if lines == 0 {
		t.Error("no header kept at all")
	}
	note := h.Get(deliver.TruncatedHeader)
	if !strings.Contains(note, "of 300") || !strings.Contains(note, "kept") {
		t.Errorf("%s = %q, want it to say how much of the ~3,000 lines was kept", deliver.TruncatedHeader, note)
	}
	t.Logf("stored %d header lines, %d bytes; %s: %s", lines, size, deliver.TruncatedHeader, note)
}
