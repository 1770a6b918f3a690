package web_test

import (
	"context"
	"html"
	"net/http"
	"strings"
	"testing"

	"github.com/mailroomhq/mailroom/internal/store"
)

// TestEventPageTransformations: the event page runs the transformation of
// each connection of the event, without delivering, and shows its input
// (credentials masked), output and log; a script that throws shows its
// error.
func TestEventPageTransformations(t *testing.T) {
	t.Parallel()
	b := setup(t, testToken)
	f := b.seed(t)
	b.login(t)
	ctx := context.Background()
	if err := b.store.ConnectionUpsert(ctx, &store.Connection{Source: "stripe", Destination: "billing",
		Transform: "function handler(r) { console.log('seen', r.body.type); r.body = {kind: r.body.type}; r.headers['x-kind'] = 'pay'; return r }"}); err != nil {
		t.Fatal(err)
	}
	if err := b.cat.Load(ctx); err != nil {
		t.Fatal(err)
	}
	before, err := b.store.AttemptList(ctx, f.deliveryID)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := b.get(t, "/ui/events/"+f.eventID)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("event page: %d", resp.StatusCode)
	}
	text := html.UnescapeString(body)
	for _, want := range []string{`<section id="transforms">`, "stripe->billing → billing", "x-kind: pay", `"kind": "checkout.session.completed"`,
		"authorization: ********", "seen checkout.session.completed"} {
		if !strings.Contains(text, want) {
			t.Errorf("event page lacks %q", want)
		}
	}
	if strings.Contains(body, headerSecret) {
		t.Error("event page shows the destination's Authorization header")
	}
	if err := b.store.ConnectionUpsert(ctx, &store.Connection{Source: "stripe", Destination: "billing",
		Transform: "function handler(r) { throw new Error('no order id') }"}); err != nil {
		t.Fatal(err)
	}
	if err := b.cat.Load(ctx); err != nil {
		t.Fatal(err)
	}
	_, body = b.get(t, "/ui/events/"+f.eventID)
	if !strings.Contains(html.UnescapeString(body), `<p class="warn transform-error">transformation threw: Error: no order id`) {
		t.Errorf("event page lacks the script's error:\n%s", body)
	}
	after, err := b.store.AttemptList(ctx, f.deliveryID)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Errorf("showing the page made attempts: %d before, %d after", len(before), len(after))
	}
}
