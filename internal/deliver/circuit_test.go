package deliver_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/deliver"
	"github.com/mailroomhq/mailroom/internal/store"
)

// TestCircuitBreaker: a destination that fails three times in a row opens
// its circuit; nothing is sent while it is open; after the cooldown one
// probe goes out; a failed probe reopens it for twice as long; once the
// destination recovers a probe closes it and every delivery arrives, none
// dead.
func TestCircuitBreaker(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	var down atomic.Bool
	down.Store(true)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if down.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(srv.Close)
	const cooldown = 300 * time.Millisecond
	addDest(t, s, &store.Destination{Name: "flaky", URL: srv.URL, MaxConcurrency: 1,
		Retry:          store.RetryPolicy{MaxAttempts: 5, Initial: store.Duration(time.Millisecond), Max: store.Duration(5 * time.Millisecond)},
		CircuitBreaker: store.CircuitBreaker{Failures: 3, Cooldown: store.Duration(cooldown), MaxCooldown: store.Duration(10 * cooldown)}})
	res := ingestN(t, s, 10, "flaky")

	type step struct {
		transition string
		st         store.CircuitState
		hits       int64
	}
	var mu sync.Mutex
	var steps []step
	start(t, s, &deliver.Options{PollInterval: 20 * time.Millisecond, OnCircuit: func(dest, transition string, st store.CircuitState) {
		mu.Lock()
		steps = append(steps, step{transition, st, hits.Load()})
		n := len(steps)
		mu.Unlock()
		if transition == deliver.CircuitReopened && n >= 4 {
			down.Store(false) // recovers after the second failed probe
		}
	}})
	waitFor(t, "the circuit closes", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(steps) > 0 && steps[len(steps)-1].transition == deliver.CircuitClosed
	})
	waitFor(t, "every delivery succeeds", func() bool {
		for _, r := range res {
			d, err := s.DeliveryGetByID(context.Background(), r.DeliveryIDs[0])
			if err != nil || d.Status != store.DeliverySucceeded {
				return false
			}
		}
		return true
	})

	mu.Lock()
	defer mu.Unlock()
	var names []string
	for _, st := range steps {
		names = append(names, st.transition)
	}
	want := []string{deliver.CircuitOpened, deliver.CircuitProbing, deliver.CircuitReopened, deliver.CircuitProbing,
		deliver.CircuitReopened, deliver.CircuitProbing, deliver.CircuitClosed}
	if len(names) != len(want) {
		t.Fatalf("transitions = %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("transitions = %v, want %v", names, want)
		}
	}
	if steps[0].hits != 3 {
		t.Errorf("opened after %d attempts, want 3 failures in a row", steps[0].hits)
	}
	for i := 1; i < len(steps); i++ {
		switch steps[i].transition {
		case deliver.CircuitProbing:
			// Open: nothing was sent between opening and the probe.
			if steps[i].hits != steps[i-1].hits {
				t.Errorf("%d attempts sent while the circuit was open", steps[i].hits-steps[i-1].hits)
			}
		case deliver.CircuitReopened, deliver.CircuitClosed:
			// Half-open: exactly the probe was sent.
			if steps[i].hits != steps[i-1].hits+1 {
				t.Errorf("%d attempts sent while half-open, want the one probe", steps[i].hits-steps[i-1].hits)
			}
		}
	}
	// The cooldown doubles with each opening.
	for i, want := range map[int]time.Duration{0: cooldown, 2: 2 * cooldown, 4: 4 * cooldown} {
		if got := steps[i].st.ProbeAt.Sub(steps[i].st.Since); got != want {
			t.Errorf("cooldown after opening %d = %s, want %s", steps[i].st.Opens, got, want)
		}
	}
	d, err := s.DestinationGet(context.Background(), "flaky")
	if err != nil {
		t.Fatal(err)
	}
	if d.Circuit.State != store.CircuitClosed || d.Circuit.Opens != 0 {
		t.Errorf("stored circuit = %+v, want closed", d.Circuit)
	}
}

// circuitLog records the circuit transitions of each destination.
type circuitLog struct {
	mu    sync.Mutex
	moves map[string][]string
}

func (c *circuitLog) on(dest, transition string, _ store.CircuitState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.moves == nil {
		c.moves = map[string][]string{}
	}
	c.moves[dest] = append(c.moves[dest], transition)
}

func (c *circuitLog) of(dest string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.moves[dest])
}

// ingestVia stores n requests, each with one delivery to dest through the
// connection conn.
func ingestVia(t *testing.T, s store.Store, n int, dest, conn string) []string {
	t.Helper()
	var ids []string
	for i := range n {
		res, err := s.RequestIngest(context.Background(), &store.RequestIngestParams{
			Request: &store.Request{Source: "src", Method: http.MethodPost, Path: "/e/src",
				Headers: http.Header{"Content-Type": {"application/json"}}, Body: fmt.Appendf(nil, `{"n":%d}`, i)},
			Event:      &store.Event{Type: "test.event"},
			Deliveries: []*store.Delivery{{Destination: dest, ConnectionID: conn}},
		})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.DeliveryIDs[0])
	}
	return ids
}

// TestCircuitIgnoresBrokenTransformation: a connection whose
// transformation throws fails every attempt through it, well past the
// breaker's threshold, yet the destination's circuit stays closed (the
// receiver was never asked) and another connection to the same
// destination is delivered; once the receiver itself answers 500, the
// circuit opens.
func TestCircuitIgnoresBrokenTransformation(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	var status atomic.Int32
	status.Store(http.StatusOK)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) { w.WriteHeader(int(status.Load())) })
	addDest(t, s, &store.Destination{Name: "shared", URL: rc.srv.URL, MaxConcurrency: 1,
		Retry:          store.RetryPolicy{MaxAttempts: 2, Initial: store.Duration(time.Millisecond), Max: store.Duration(5 * time.Millisecond)},
		CircuitBreaker: store.CircuitBreaker{Failures: 3, Cooldown: store.Duration(time.Hour)}})
	var tf transforms
	tf.set(t, "broken", `function handler(request) { throw new Error("boom"); }`, nil)
	var log circuitLog
	start(t, s, &deliver.Options{Transforms: tf.lookup, OnCircuit: log.on, PollInterval: 20 * time.Millisecond})

	for _, id := range ingestVia(t, s, 5, "shared", "broken") {
		waitStatus(t, s, id, store.DeliveryDead)
		if as := listAttempts(t, s, id); len(as) != 2 || !strings.Contains(as[1].Error, "boom") {
			t.Fatalf("attempts of %s = %+v, want 2 failed by the script", id, as)
		}
	}
	if got := log.of("shared"); len(got) != 0 {
		t.Fatalf("10 failed transformations moved the circuit: %v", got)
	}
	if n := rc.count(); n != 0 {
		t.Fatalf("receiver got %d requests through a throwing transformation", n)
	}
	ok := ingestVia(t, s, 1, "shared", "plain")
	waitStatus(t, s, ok[0], store.DeliverySucceeded)

	status.Store(http.StatusInternalServerError)
	ingestVia(t, s, 3, "shared", "plain")
	waitFor(t, "the circuit to open on 500s", func() bool {
		got := log.of("shared")
		return len(got) > 0 && got[0] == deliver.CircuitOpened
	})
	if d, err := s.DestinationGet(context.Background(), "shared"); err != nil || d.Circuit.State != store.CircuitOpen {
		t.Errorf("stored circuit = %+v (%v), want open", d.Circuit, err)
	}
}

// TestCircuitCountsOnlyTheReceiver: failures on mailroom's side of the
// exchange (an OAuth2 token endpoint, the address guard, a proxy that is
// down or refuses) leave the circuit closed however often they repeat;
// failures of the receiver's side (connection refused directly or
// reported by a SOCKS5 proxy, a 503) open it.
func TestCircuitCountsOnlyTheReceiver(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	closed := func() string { // a loopback port nobody listens on
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return addr
	}
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"server_error"}`, http.StatusInternalServerError)
	}))
	t.Cleanup(tokens.Close)
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusProxyAuthRequired) // to CONNECT and to plain requests alike
	}))
	t.Cleanup(refusing.Close)
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) { w.WriteHeader(http.StatusServiceUnavailable) })
	good := newReceiver(t, nil)
	gu, _ := url.Parse(good.srv.URL)
	socksRight := newSOCKS(t, closed(), "u", "p")
	socksWrong := newSOCKS(t, gu.Host, "u", "other")
	down := closed()

	cases := []struct {
		dest  store.Destination
		opens bool
	}{
		{store.Destination{Name: "token-endpoint-fails", URL: good.srv.URL, Auth: store.OutboundAuth{
			Type: store.AuthOAuth2ClientCredentials, TokenURL: tokens.URL, ClientID: "id", ClientSecret: "secret"}}, false},
		{store.Destination{Name: "guard-refuses", URL: "http://169.254.169.254/hooks"}, false},
		{store.Destination{Name: "proxy-down", URL: good.srv.URL, Proxy: "http://" + down}, false},
		{store.Destination{Name: "proxy-407-connect", URL: "https://" + gu.Host + "/hooks", Proxy: refusing.URL}, false},
		{store.Destination{Name: "proxy-407-plain", URL: good.srv.URL, Proxy: refusing.URL}, false},
		{store.Destination{Name: "socks-auth-fails", URL: good.srv.URL, Proxy: "socks5://u:p@" + socksWrong.ln.Addr().String()}, false},
		{store.Destination{Name: "receiver-down", URL: "http://" + down + "/hooks"}, true},
		{store.Destination{Name: "socks-target-down", URL: good.srv.URL, Proxy: "socks5://u:p@" + socksRight.ln.Addr().String()}, true},
		{store.Destination{Name: "receiver-503", URL: rc.srv.URL}, true},
	}
	for _, tt := range cases {
		d := tt.dest
		d.MaxConcurrency = 1
		d.Retry = store.RetryPolicy{MaxAttempts: 1}
		d.CircuitBreaker = store.CircuitBreaker{Failures: 2, Cooldown: store.Duration(time.Hour)}
		addDest(t, s, &d)
	}
	var log circuitLog
	start(t, s, &deliver.Options{Guard: loopbackOnly(), OnCircuit: log.on, PollInterval: 20 * time.Millisecond})
	for _, tt := range cases {
		name := tt.dest.Name
		t.Run(name, func(t *testing.T) {
			ids := ingestVia(t, s, 4, name, store.ConnectionID("src", name))
			if tt.opens {
				waitFor(t, "the circuit to open", func() bool { return slices.Contains(log.of(name), deliver.CircuitOpened) })
				return
			}
			for _, id := range ids {
				waitStatus(t, s, id, store.DeliveryDead)
			}
			if got := log.of(name); len(got) != 0 {
				a := listAttempts(t, s, ids[3])[0]
				t.Errorf("4 failures before the receiver moved the circuit: %v (last attempt: HTTP %d, %q)", got, a.StatusCode, a.Error)
			}
		})
	}
	if n := good.count(); n != 0 {
		t.Errorf("the receiver behind the failing token endpoint and proxies got %d requests", n)
	}
}
