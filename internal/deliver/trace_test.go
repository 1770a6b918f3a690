package deliver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mailroomhq/mailroom/internal/catalog"
	"github.com/mailroomhq/mailroom/internal/deliver"
	ingestpkg "github.com/mailroomhq/mailroom/internal/ingest"
	"github.com/mailroomhq/mailroom/internal/route"
	"github.com/mailroomhq/mailroom/internal/store"
)

// traceBundle runs ingest and the dispatcher over loopback with tracing
// into an in-memory exporter, and a destination that keeps the
// traceparent of each delivery.
type traceBundle struct {
	url   string
	spans *tracetest.InMemoryExporter

	mu           sync.Mutex
	traceparents map[string]string // event id -> traceparent received
}

func setupTrace(t *testing.T, traced bool) *traceBundle {
	t.Helper()
	ctx := context.Background()
	s := newStore(t)
	b := &traceBundle{spans: tracetest.NewInMemoryExporter(), traceparents: map[string]string{}}
	dest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.traceparents[r.Header.Get(deliver.HeaderEventID)] = r.Header.Get("Traceparent")
		b.mu.Unlock()
	}))
	t.Cleanup(dest.Close)
	if err := s.SourceUpsert(ctx, &store.Source{Name: "open"}); err != nil {
		t.Fatal(err)
	}
	addDest(t, s, &store.Destination{Name: "sink", URL: dest.URL})
	if err := s.ConnectionUpsert(ctx, &store.Connection{Source: "open", Destination: "sink"}); err != nil {
		t.Fatal(err)
	}
	compiler, err := route.NewCompiler()
	if err != nil {
		t.Fatal(err)
	}
	cat := catalog.New(s, compiler, nil)
	if err := cat.Load(ctx); err != nil {
		t.Fatal(err)
	}
	var tp trace.TracerProvider
	if traced {
		sdk := sdktrace.NewTracerProvider(sdktrace.WithSyncer(b.spans))
		t.Cleanup(func() { sdk.Shutdown(context.Background()) })
		tp = sdk
	}
	mux := http.NewServeMux()
	ingestpkg.New(s, cat, &ingestpkg.Options{TracerProvider: tp}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	b.url = srv.URL
	start(t, s, &deliver.Options{PollInterval: 10 * time.Millisecond, TracerProvider: tp})
	return b
}

// send posts a webhook, waits for its delivery and returns the event id
// and the traceparent the destination received.
func (b *traceBundle) send(t *testing.T, traceparent string) (eventID, received string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.url+"/e/open", strings.NewReader(`{"n":1}`))
	if traceparent != "" {
		req.Header.Set("Traceparent", traceparent)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ack ingestpkg.Response
	if err := json.NewDecoder(resp.Body).Decode(&ack); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the delivery", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		_, ok := b.traceparents[ack.EventID]
		return ok
	})
	b.mu.Lock()
	defer b.mu.Unlock()
	return ack.EventID, b.traceparents[ack.EventID]
}

// span returns the ended span whose attribute key is value, waiting for it.
func (b *traceBundle) span(t *testing.T, kind trace.SpanKind, key, value string) tracetest.SpanStub {
	t.Helper()
	var found tracetest.SpanStub
	waitFor(t, "a span with "+key+"="+value, func() bool {
		for _, s := range b.spans.GetSpans() {
			if s.SpanKind != kind {
				continue
			}
			for _, kv := range s.Attributes {
				if string(kv.Key) == key && kv.Value.Emit() == value {
					found = s
					return true
				}
			}
		}
		return false
	})
	return found
}

func attr(s tracetest.SpanStub, key string) attribute.Value {
	for _, kv := range s.Attributes {
		if string(kv.Key) == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

var traceparentRE = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$`)

func TestTraceIngestAndAttempt(t *testing.T) {
	t.Parallel()
	b := setupTrace(t, true)
	eventID, received := b.send(t, "")

	in := b.span(t, trace.SpanKindServer, "mailroom.event_id", eventID)
	if got := attr(in, "mailroom.source").AsString(); got != "open" {
		t.Errorf("ingest span source = %q", got)
	}
	if got := attr(in, "mailroom.outcome").AsString(); got != ingestpkg.OutcomeAccepted {
		t.Errorf("ingest span outcome = %q", got)
	}
	at := b.span(t, trace.SpanKindClient, "mailroom.event_id", eventID)
	if attr(at, "mailroom.destination").AsString() != "sink" || attr(at, "mailroom.attempt").AsInt64() != 1 ||
		attr(at, "http.response.status_code").AsInt64() != 200 {
		t.Errorf("attempt span attributes = %v", at.Attributes)
	}
	m := traceparentRE.FindStringSubmatch(received)
	if m == nil {
		t.Fatalf("destination got traceparent %q, want a valid W3C traceparent", received)
	}
	if m[1] != at.SpanContext.TraceID().String() || m[2] != at.SpanContext.SpanID().String() {
		t.Errorf("traceparent %q does not name the attempt span %s/%s", received, at.SpanContext.TraceID(), at.SpanContext.SpanID())
	}
}

// TestTraceContinuesInboundTraceparent checks that a provider's
// traceparent is continued by the ingest span and, through the stored
// request headers, by the attempt and the destination.
func TestTraceContinuesInboundTraceparent(t *testing.T) {
	t.Parallel()
	b := setupTrace(t, true)
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	eventID, received := b.send(t, "00-"+traceID+"-"+parentID+"-01")

	in := b.span(t, trace.SpanKindServer, "mailroom.event_id", eventID)
	if in.SpanContext.TraceID().String() != traceID || in.Parent.SpanID().String() != parentID {
		t.Errorf("ingest span %s parent %s, want trace %s parent %s", in.SpanContext.TraceID(), in.Parent.SpanID(), traceID, parentID)
	}
	at := b.span(t, trace.SpanKindClient, "mailroom.event_id", eventID)
	if at.SpanContext.TraceID().String() != traceID {
		t.Errorf("attempt span trace = %s, want %s", at.SpanContext.TraceID(), traceID)
	}
	if m := traceparentRE.FindStringSubmatch(received); m == nil || m[1] != traceID || m[2] != at.SpanContext.SpanID().String() {
		t.Errorf("destination got traceparent %q, want trace %s parent %s", received, traceID, at.SpanContext.SpanID())
	}
}

func TestNoTracingSendsNoTraceparent(t *testing.T) {
	t.Parallel()
	b := setupTrace(t, false)
	_, received := b.send(t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if received != "" {
		t.Errorf("destination got traceparent %q with tracing off", received)
	}
}
