package deliver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/mailroomhq/mailroom/internal/netguard"
	"github.com/mailroomhq/mailroom/internal/redact"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/verify"
)

// recordTimeout bounds the store writes that finish an attempt, counted
// from the end of its HTTP exchange (see [worker.recordContext]), and the
// circuit breaker's writes.
const recordTimeout = 10 * time.Second

// drainLimit is how much of a response body beyond MaxResponseBody is read
// and discarded so that the connection can be reused.
const drainLimit = 256 << 10

// TruncatedHeader is added to an attempt's stored response headers when
// some were dropped to stay within the caps; its value says how many of
// how many lines and bytes were kept.
const TruncatedHeader = "X-Mailroom-Headers-Truncated"

// boundHeaders returns the headers of h to store with an attempt: header
// lines in name order, then value order, while at most maxLines lines and
// maxBytes bytes (names plus values) are kept. A destination can answer
// with megabytes of headers; what is stored stays small, as the body does.
func boundHeaders(h http.Header, maxLines, maxBytes int) http.Header {
	lines, size := 0, 0
	for k, vs := range h {
		lines += len(vs)
		for _, v := range vs {
			size += len(k) + len(v)
		}
	}
	if lines <= maxLines && size <= maxBytes {
		return h
	}
	out := http.Header{}
	keptLines, keptBytes := 0, 0
	for _, k := range slices.Sorted(maps.Keys(h)) {
		for _, v := range h[k] {
			n := len(k) + len(v)
			if keptLines+1 > maxLines || keptBytes+n > maxBytes {
				continue
			}
			out[k] = append(out[k], v)
			keptLines++
			keptBytes += n
		}
	}
	out.Set(TruncatedHeader, fmt.Sprintf("kept %d of %d header lines, %d of %d bytes", keptLines, lines, keptBytes, size))
	return out
}

// Delivery headers set by mailroom on every attempt, besides the
// Standard Webhooks ones (webhook-id, webhook-timestamp and, when the
// destination signs, webhook-signature).
const (
	HeaderEventID    = "X-Mailroom-Event-Id"
	HeaderDeliveryID = "X-Mailroom-Delivery-Id"
	HeaderAttempt    = "X-Mailroom-Attempt"
)

// attempt runs one claimed delivery through to its recorded outcome,
// calling release once the HTTP exchange is over. It
// returns when the delivery is next due if this attempt scheduled a retry,
// or the zero time.
func (w *worker) attempt(cfg *destConfig, dl *store.Delivery, release func()) time.Time {
	d := w.d
	req, err := d.loadRequest(w.r.hard, dl)
	if err != nil {
		if w.r.hard.Err() != nil {
			return time.Time{} // stopping: the lease expires and it is claimed again
		}
		if !errors.Is(err, store.ErrNotFound) {
			// Storage trouble, not the receiver's fault: leave the
			// delivery to its lease rather than count it as failed.
			d.log.Error("load request for delivery", "delivery", dl.ID, "destination", w.name, "err", err)
			return time.Time{}
		}
		// The original request is gone (pruned): nothing to send, ever.
		rctx, cancel := w.recordContext()
		defer cancel()
		a := store.Attempt{
			DeliveryID:  dl.ID,
			EventID:     dl.EventID,
			Destination: dl.Destination,
			Number:      dl.Attempts,
			StartedAt:   d.now(),
			Error:       fmt.Sprintf("load original request: %v", err),
		}
		w.record(rctx, cfg, &a, store.DeliveryDead, time.Time{}, a.StartedAt, OutcomeDead, nil)
		return time.Time{}
	}

	plan, err := d.retryPlan(w.r.hard, cfg, dl)
	if err != nil {
		if w.r.hard.Err() == nil {
			d.log.Error("retry policy of delivery", "delivery", dl.ID, "destination", w.name, "err", err)
		}
		return time.Time{} // as above: the lease expires and it is claimed again
	}

	a, retryAfter, reached := d.send(w.r.hard, cfg, dl, req)
	// The writes that finish the attempt have their own time from here:
	// the exchange may have taken the destination's whole timeout.
	rctx, cancel := w.recordContext()
	defer cancel()
	canceled := w.r.hard.Err() != nil && !a.Success
	now := d.now()
	status, next, outcome, applied := d.decide(plan, &a, dl.CreatedAt, retryAfter, canceled, now)
	if outcome != OutcomeCanceled {
		w.observeCircuit(cfg, dl, &a, reached)
	}
	if outcome == OutcomePaused {
		w.holdLocal()
		reason := "410 Gone from " + redact.URL(cfg.dest.URL)
		if err := d.store.DestinationSetPaused(rctx, w.name, true, reason); err != nil {
			d.log.Error("pause destination", "destination", w.name, "err", err)
		} else {
			d.log.Warn("destination paused", "destination", w.name, "reason", reason)
		}
		w.holdCommitted()
	}
	release() // the exchange is over (and a pause is in place): free the slot
	if !w.record(rctx, cfg, &a, status, next, now, outcome, applied) || outcome != OutcomeRetry {
		return time.Time{}
	}
	return next
}

// loadRequest returns the original request of dl, with headers and body.
func (d *Dispatcher) loadRequest(ctx context.Context, dl *store.Delivery) (*store.Request, error) {
	id := dl.RequestID
	if id == "" {
		ev, err := d.store.EventGetByID(ctx, dl.EventID)
		if err != nil {
			return nil, fmt.Errorf("get event of delivery %s: %w", dl.ID, err)
		}
		id = ev.RequestID
	}
	req, err := d.store.RequestGetByID(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("get request of delivery %s: %w", dl.ID, err)
	}
	return req, nil
}

// recordContext bounds the store writes that finish an attempt
// (recordTimeout from now). It is detached from Run's context, so that an
// attempt that completes during the grace period is still recorded.
func (w *worker) recordContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(w.r.hard), w.d.recordTimeout)
}

// record stores a and moves its delivery (with the retry policy applied,
// if any) through the run's [recorder], logs what needs logging, calls the
// OnAttempt hook, and reports whether the delivery moved. The record of an
// ordered destination's attempt is sent at once: its next delivery is
// claimed only after it.
func (w *worker) record(ctx context.Context, cfg *destConfig, a *store.Attempt, status string, next, now time.Time, outcome string, applied *store.RetryApplied) bool {
	d := w.d
	err := w.r.rec.record(ctx, &store.AttemptRecordParams{
		Attempt:       a,
		Status:        status,
		NextAttemptAt: next,
		Retry:         applied,
		Now:           now,
	}, cfg.dest.Ordered)
	switch {
	case err == nil:
	case errors.Is(err, store.ErrLeaseLost):
		// Another claim took over after our lease expired; its outcome
		// counts, ours is kept only as history.
		d.log.Debug("attempt outcome dropped: lease lost", "delivery", a.DeliveryID, "attempt", a.Number)
	default:
		// The lease expires and the delivery is claimed again.
		d.log.Error("record attempt", "delivery", a.DeliveryID, "attempt", a.Number, "err", err)
	}
	if !a.Success && outcome != OutcomeCanceled {
		d.logFailed(ctx, a, outcome, next, applied)
	}
	if d.opts.OnAttempt != nil {
		d.opts.OnAttempt(*a, outcome)
	}
	return err == nil
}

// logFailed writes the one line of a failed attempt: a warning while the
// delivery will be retried, an error when it is dead. The attempt's error
// text is safe to show: the HTTP client strips passwords from URLs, and
// the request's headers (which carry the signing secret's output) are not
// logged.
func (d *Dispatcher) logFailed(ctx context.Context, a *store.Attempt, outcome string, next time.Time, applied *store.RetryApplied) {
	level := slog.LevelWarn
	if outcome == OutcomeDead {
		level = slog.LevelError
	}
	attrs := []any{"destination", a.Destination, "delivery", a.DeliveryID, "event", a.EventID,
		"attempt", a.Number, "outcome", outcome}
	if a.StatusCode != 0 {
		attrs = append(attrs, "status", a.StatusCode)
	}
	if a.Error != "" {
		attrs = append(attrs, "error", a.Error)
	}
	if outcome == OutcomeRetry && !next.IsZero() {
		attrs = append(attrs, "next_retry", next)
	}
	if applied != nil {
		attrs = append(attrs, "retry_policy", applied.Policy)
		if applied.Reason != "" {
			attrs = append(attrs, "reason", applied.Reason)
		}
	}
	d.log.Log(ctx, level, "delivery attempt failed", attrs...)
}

// tracerName names the instrumentation scope of attempt spans.
const tracerName = "github.com/mailroomhq/mailroom/internal/deliver"

// send makes one HTTP try of dl and describes it as an attempt. It also
// returns the Retry-After of a 429 or 503 response, and whether the try
// reached the receiver (see [reachedReceiver]): only those say anything
// about the destination's health, and only those feed its circuit
// breaker. With tracing on, the try is one client span, a child of the
// original request's traceparent when it had one.
func (d *Dispatcher) send(ctx context.Context, cfg *destConfig, dl *store.Delivery, req *store.Request) (a store.Attempt, retryAfter time.Duration, reached bool) {
	if d.tracer == nil {
		return d.sendHTTP(ctx, cfg, dl, req)
	}
	if req.Headers.Get("Traceparent") != "" {
		ctx = propagation.TraceContext{}.Extract(ctx, propagation.HeaderCarrier(req.Headers))
	}
	ctx, span := d.tracer.Start(ctx, "deliver "+dl.Destination, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("mailroom.destination", dl.Destination),
			attribute.String("mailroom.delivery_id", dl.ID),
			attribute.String("mailroom.event_id", dl.EventID),
			attribute.String("mailroom.source", dl.Source),
			attribute.Int("mailroom.attempt", dl.Attempts),
			attribute.String("http.request.method", http.MethodPost),
		))
	defer span.End()
	a, retryAfter, reached = d.sendHTTP(ctx, cfg, dl, req)
	if a.StatusCode != 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", a.StatusCode))
	}
	if !a.Success {
		msg := a.Error
		if msg == "" {
			msg = fmt.Sprintf("HTTP %d", a.StatusCode)
		}
		span.SetStatus(codes.Error, msg)
	}
	return a, retryAfter, reached
}

// sendHTTP is send without its span. It sends the traceparent of the span
// in ctx, if any. Every failure before the request is handed to the HTTP
// client (building it, the connection's transformation, signing, the
// OAuth2 token) is mailroom's side of the exchange: reached is false.
func (d *Dispatcher) sendHTTP(ctx context.Context, cfg *destConfig, dl *store.Delivery, req *store.Request) (store.Attempt, time.Duration, bool) {
	a := store.Attempt{
		DeliveryID:  dl.ID,
		EventID:     dl.EventID,
		Destination: dl.Destination,
		Number:      dl.Attempts,
		StartedAt:   d.now(),
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	hreq, err := newRequest(ctx, cfg.dest, req, d.opts.UserAgent)
	if err != nil {
		a.Error = err.Error()
		a.DurationMS = ms(time.Since(start))
		return a, 0, false
	}
	h := hreq.Header
	body, target, err := d.transform(ctx, dl, req, hreq, cfg.dest.URL)
	if err != nil {
		a.Error = err.Error()
		a.DurationMS = ms(time.Since(start))
		return a, 0, false
	}
	h.Set(verify.StandardWebhooksIDHeader, dl.EventID)
	h.Set(verify.StandardWebhooksTimestampHeader, strconv.FormatInt(a.StartedAt.Unix(), 10))
	if cfg.dest.Sign.Type != "" {
		// Signed as the provider of the verify table that sign.type names
		// (Validate checked it can sign deliveries), the event id as the
		// provider's delivery id.
		m := &verify.Message{URL: target, Header: h, Body: body, ID: dl.EventID, Now: a.StartedAt}
		if err := verify.Sign(verify.Config{Type: cfg.dest.Sign.Type, Secret: cfg.dest.Sign.Secret}, m); err != nil {
			a.Error = fmt.Sprintf("sign as %s: %v", cfg.dest.Sign.Type, err)
			a.DurationMS = ms(time.Since(start))
			return a, 0, false
		}
	}
	h.Set(HeaderEventID, dl.EventID)
	h.Set(HeaderDeliveryID, dl.ID)
	h.Set(HeaderAttempt, strconv.Itoa(dl.Attempts))
	if cfg.dest.Auth.Type == store.AuthOAuth2ClientCredentials {
		tok, err := d.egress.token(ctx, cfg.dest, cfg.client)
		if err != nil {
			a.Error = err.Error()
			a.DurationMS = ms(time.Since(start))
			return a, 0, false
		}
		h.Set("Authorization", "Bearer "+tok)
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() && d.tracer != nil {
		propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(h))
	}

	resp, err := cfg.client.Do(hreq)
	if err != nil {
		a.Error = describeError(ctx, err, cfg.timeout)
		a.DurationMS = ms(time.Since(start))
		return a, 0, reachedReceiver(err)
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, d.opts.MaxResponseBody))
	if rerr == nil {
		// Read on a little so the connection can go back to the pool.
		io.CopyN(io.Discard, resp.Body, drainLimit)
	}
	resp.Body.Close()
	a.DurationMS = ms(time.Since(start))
	a.StatusCode = resp.StatusCode
	a.ResponseHeaders = boundHeaders(resp.Header, d.opts.MaxResponseHeaders, d.opts.MaxResponseHeaderBytes)
	if len(body) > 0 {
		a.ResponseBody = body
	}
	a.Success = resp.StatusCode >= 200 && resp.StatusCode <= 299
	if resp.StatusCode == http.StatusUnauthorized && cfg.dest.Auth.Type != "" {
		// The receiver refused the token (revoked, rotated): fetch a new
		// one for the next attempt.
		d.egress.forgetToken(cfg.dest.Name)
	}
	if !a.Success && rerr != nil {
		a.Error = "read response body: " + describeError(ctx, rerr, cfg.timeout)
	}
	var retryAfter time.Duration
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		retryAfter = ParseRetryAfter(resp.Header.Get("Retry-After"), d.now())
	}
	// A 407 through a proxy is the proxy's answer, not the receiver's.
	return a, retryAfter, !(cfg.proxied && resp.StatusCode == http.StatusProxyAuthRequired)
}

// reachedReceiver reports whether a failed exchange err got as far as the
// receiver's side: a connection refused or reset by it, its name that
// does not resolve, its TLS handshake, a timeout waiting for it. Those
// are the destination's failures. It is false for failures that never
// left mailroom's side: the address guard refusing the target (a
// [netguard.RefusedError]) and a proxy in front of the receiver that could
// not be reached or refused the request ([proxyError]).
func reachedReceiver(err error) bool {
	var refused *netguard.RefusedError
	var px *proxyError
	return !errors.As(err, &refused) && !errors.As(err, &px)
}

// newRequest builds the request an attempt sends to dest for the original
// request req, before the headers set last (webhook-id and -timestamp,
// the signature, X-Mailroom-*, traceparent) and before any
// transformation: a POST of the body to the destination URL with the
// User-Agent ua, the destination's static headers and the original
// Content-Type.
func newRequest(ctx context.Context, dest *store.Destination, req *store.Request, ua string) (*http.Request, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, dest.URL, bytes.NewReader(req.Body))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	h := hreq.Header
	h.Set("User-Agent", ua)
	for k, v := range dest.Headers {
		if http.CanonicalHeaderKey(k) == "Host" {
			hreq.Host = v
			continue
		}
		h.Set(k, v)
	}
	if ct := req.Headers.Get("Content-Type"); ct != "" {
		h.Set("Content-Type", ct)
	}
	return hreq, nil
}

// describeError turns a transport error into the text stored with the
// attempt, naming a timeout as such.
func describeError(ctx context.Context, err error, timeout time.Duration) string {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Sprintf("timeout after %s: %v", timeout, err)
	case ctx.Err() != nil:
		return fmt.Sprintf("canceled, dispatcher stopping: %v", err)
	}
	return err.Error()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
