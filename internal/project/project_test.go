package project

import (
	"errors"
	"testing"
	"time"
)

func TestLimits(t *testing.T) {
	p := New([]Config{{Name: "acme", IngestRate: "2/s", MaxDestinations: 2, Retention: 0}, {Name: "slow", Retention: 86400 * 1e9}})
	now := time.Unix(1000, 0)
	// A burst of two, then one every half second.
	for i, want := range []bool{true, true, false} {
		if ok, _ := p.AllowIngest("acme", now); ok != want {
			t.Errorf("request %d at once: %v, want %v", i, ok, want)
		}
	}
	if ok, wait := p.AllowIngest("acme", now); ok || wait != 500*time.Millisecond {
		t.Errorf("over the rate: %v, wait %s; want a 500ms wait", ok, wait)
	}
	if ok, _ := p.AllowIngest("acme", now.Add(500*time.Millisecond)); !ok {
		t.Error("half a second later: refused")
	}
	if ok, _ := p.AllowIngest("other", now); !ok {
		t.Error("an undeclared project was limited")
	}
	if err := p.CheckNewDestination("acme", 1); err != nil {
		t.Errorf("second destination: %v", err)
	}
	if err := p.CheckNewDestination("acme", 2); !errors.Is(err, ErrTooManyDestinations) {
		t.Errorf("third destination: %v", err)
	}
	if err := p.CheckNewDestination("default", 100); err != nil {
		t.Errorf("the default project: %v", err)
	}
	if r := p.Retentions(); len(r) != 1 || r["slow"] != 24*time.Hour {
		t.Errorf("retentions: %v", r)
	}
	var none *Projects
	if ok, _ := none.AllowIngest("acme", now); !ok {
		t.Error("nil Projects limited")
	}
}
