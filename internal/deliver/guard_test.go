package deliver_test

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/deliver"
	"github.com/mailroomhq/mailroom/internal/netguard"
	"github.com/mailroomhq/mailroom/internal/store"
)

// TestGuardRefusesPrivateAddresses delivers, under the default policy, to
// a receiver on loopback named by host name (so the refusal must come
// after DNS resolution) and to the cloud metadata address: neither
// reaches anything, each attempt says why, and a destination whose host
// the allowlist names is delivered.
func TestGuardRefusesPrivateAddresses(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	hidden := newReceiver(t, nil)
	allowed := newReceiver(t, nil)
	_, hiddenPort, _ := net.SplitHostPort(hidden.srv.Listener.Addr().String())
	once := store.RetryPolicy{MaxAttempts: 1}
	addDest(t, s, &store.Destination{Name: "byname", URL: "http://localhost:" + hiddenPort + "/", Retry: once})
	addDest(t, s, &store.Destination{Name: "metadata", URL: "http://169.254.169.254/latest/meta-data/", Retry: once, Timeout: store.Duration(time.Minute)})
	// Both receivers listen on 127.0.0.1: the allowed one is named by its
	// IP literal, which the host allowlist names, the hidden one by
	// "localhost", which it does not.
	addDest(t, s, &store.Destination{Name: "allowed", URL: allowed.srv.URL})
	allowedHost, _, _ := net.SplitHostPort(allowed.srv.Listener.Addr().String())
	guard := netguard.New(netguard.Options{AllowHosts: []string{allowedHost}})
	start(t, s, &deliver.Options{Guard: guard})

	res := ingest(t, s, []byte(`{}`), "application/json", "byname", "metadata", "allowed")
	byID := map[string]string{}
	for _, id := range res.DeliveryIDs {
		byID[getDelivery(t, s, id).Destination] = id
	}
	waitStatus(t, s, byID["allowed"], store.DeliverySucceeded)
	for _, name := range []string{"byname", "metadata"} {
		d := waitStatus(t, s, byID[name], store.DeliveryDead)
		if !strings.Contains(d.LastError, "refused to connect to") || !strings.Contains(d.LastError, "delivery.allow_networks") {
			t.Errorf("%s: last error %q does not say the address was refused and how to allow it", name, d.LastError)
		}
		if a := listAttempts(t, s, byID[name]); len(a) != 1 || a[0].DurationMS > 5000 {
			t.Errorf("%s: attempts %+v, want one quick refusal (no connection tried)", name, a)
		}
	}
	if d := getDelivery(t, s, byID["byname"]); !strings.Contains(d.LastError, "localhost (127.0.0.1)") && !strings.Contains(d.LastError, "localhost (::1)") {
		t.Errorf("byname: %q does not name the resolved address", d.LastError)
	}
	if d := getDelivery(t, s, byID["metadata"]); !strings.Contains(d.LastError, "cloud metadata") {
		t.Errorf("metadata: %q does not name the class", d.LastError)
	}
	if n := hidden.count(); n != 0 {
		t.Errorf("the loopback receiver got %d requests through a host name", n)
	}
}

// TestRedirectNotFollowed allows the redirector (loopback) and shows that
// its redirect to the metadata address is a failed attempt, not a request
// to the metadata address.
func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	redirector := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
	})
	addDest(t, s, &store.Destination{Name: "redirect", URL: redirector.srv.URL, Retry: store.RetryPolicy{MaxAttempts: 1}})
	guard := netguard.New(netguard.Options{AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	start(t, s, &deliver.Options{Guard: guard})
	id := ingest(t, s, []byte(`{}`), "application/json", "redirect").DeliveryIDs[0]
	d := waitStatus(t, s, id, store.DeliveryDead)
	if d.LastStatus != http.StatusFound || redirector.count() != 1 {
		t.Errorf("redirect: last status %d after %d requests, want one 302 kept as the outcome", d.LastStatus, redirector.count())
	}
}
