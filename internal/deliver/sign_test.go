package deliver_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-github/v84/github"
	"github.com/stripe/stripe-go/v85/webhook"

	"github.com/mailroomhq/mailroom/internal/store"
)

// TestSignAsProvider delivers to destinations that sign as GitHub and as
// Stripe, and checks each delivery with that provider's own library, the
// way a receiver already written for the provider would.
func TestSignAsProvider(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	gh := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {})
	st := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {})
	start(t, s, nil)
	addDest(t, s, &store.Destination{Name: "gh", URL: gh.srv.URL + "/gh", Sign: store.SignConfig{Type: "github", Secret: "gh-secret"}})
	addDest(t, s, &store.Destination{Name: "st", URL: st.srv.URL + "/st", Sign: store.SignConfig{Type: "stripe", Secret: "whsec_st"}})
	body := []byte(`{"id":"evt_1","object":"event","type":"invoice.paid","api_version":"2025-01-27.acacia"}`)
	res := ingest(t, s, body, "application/json", "gh", "st")
	for _, id := range res.DeliveryIDs {
		waitStatus(t, s, id, store.DeliverySucceeded)
	}
	if hits := gh.all(); len(hits) != 1 {
		t.Errorf("GitHub receiver got %d requests, want 1", len(hits))
	} else {
		r := httptest.NewRequest(http.MethodPost, "/gh", bytes.NewReader(hits[0].body))
		r.Header = hits[0].header
		if _, err := github.ValidatePayload(r, []byte("gh-secret")); err != nil {
			t.Errorf("go-github refuses the delivery: %v", err)
		}
		if got := github.DeliveryID(r); got != res.EventID {
			t.Errorf("X-GitHub-Delivery = %q, want the event id %q", got, res.EventID)
		}
	}
	if hits := st.all(); len(hits) != 1 {
		t.Errorf("Stripe receiver got %d requests, want 1", len(hits))
	} else if err := webhook.ValidatePayload(hits[0].body, hits[0].header.Get("Stripe-Signature"), "whsec_st"); err != nil {
		t.Errorf("stripe-go refuses the delivery: %v", err)
	}
}
