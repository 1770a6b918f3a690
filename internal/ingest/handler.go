// Package ingest receives webhooks: POST /e/{source}[/any/suffix] for a
// source of the default project, /e/{project}/{source}[/any/suffix] for a
// source of another project (the path after /e/ is the source's full
// name, [store.FullName]). It
// enforces the source's body limit, verifies the signature on the raw bytes,
// computes the dedup key and the matching connections, and hands the request,
// its event and its deliveries to the store in one write. It answers 200 only
// once that write is durable, and records every request it refuses, with
// the reason.
package ingest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/mailroomhq/mailroom/internal/catalog"
	"github.com/mailroomhq/mailroom/internal/project"
	"github.com/mailroomhq/mailroom/internal/redact"
	"github.com/mailroomhq/mailroom/internal/route"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/verify"
)

// Options tunes a Handler.
type Options struct {
	// Logger receives errors. If nil, they are discarded.
	Logger *slog.Logger
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
	// OnRequest, if non-nil, is called after each request with the source
	// name from the path, one of the Outcome constants and the handling
	// time. It runs on the request's goroutine and must not block.
	OnRequest func(source, outcome string, elapsed time.Duration)
	// OnDedupError, if non-nil, is called for each accepted request whose
	// source has a dedup key expression that could not be computed on it
	// (the request is then accepted without deduplication). It runs on the
	// request's goroutine and must not block.
	OnDedupError func(source string)
	// DedupWarnEvery is how often, at most, a source's dedup key failures
	// are logged at warn level: the first at once, then one line per
	// interval counting those in between. If zero,
	// [DefaultDedupWarnEvery].
	DedupWarnEvery time.Duration
	// RejectedBodyBytes is how much of the body of a refused request
	// (failed verification, too large, unreadable) is stored with it; its
	// size and, when it was read whole, its SHA-256 are stored too. An
	// unverified sender can so never fill the disk faster than headers
	// and this prefix allow. If zero, [DefaultRejectedBodyBytes]; if
	// negative, no body is kept.
	RejectedBodyBytes int
	// Projects, if non-nil, holds the projects' ingest rates: a request
	// to a source of a project over its rate is answered 429 with
	// Retry-After, and not stored. If nil, no project is limited.
	Projects *project.Projects
	// TracerProvider, if non-nil, traces each request with one server span
	// (source, outcome, request and event ids), continuing the caller's
	// trace when the request carries a W3C traceparent header. If nil,
	// nothing is traced.
	TracerProvider trace.TracerProvider
}

// DefaultRejectedBodyBytes is [Options.RejectedBodyBytes] when zero.
const DefaultRejectedBodyBytes = 4 << 10

// Outcomes passed to [Options.OnRequest]: what became of a request.
const (
	// OutcomeAccepted: verified and stored as a new event.
	OutcomeAccepted = "accepted"
	// OutcomeDuplicate: verified, but its dedup key was already held;
	// recorded as a duplicate of the earlier event.
	OutcomeDuplicate = "duplicate"
	// OutcomeUnauthorized: verification failed (401).
	OutcomeUnauthorized = "unauthorized"
	// OutcomeTooLarge: the body exceeded the source's limit (413).
	OutcomeTooLarge = "too_large"
	// OutcomeUnknownSource: no source has the name in the path (404).
	OutcomeUnknownSource = "unknown_source"
	// OutcomeBadRequest: the body could not be read (400).
	OutcomeBadRequest = "bad_request"
	// OutcomeStorageError: storage refused the write (503); nothing was
	// stored.
	OutcomeStorageError = "storage_error"
	// OutcomeHandshake: a provider's endpoint check, answered by the
	// source and recorded with no event.
	OutcomeHandshake = "handshake"
	// OutcomeMethodNotAllowed: a GET that is no handshake (405).
	OutcomeMethodNotAllowed = "method_not_allowed"
	// OutcomeRateLimited: the source's project is over its ingest rate
	// (429); nothing was stored.
	OutcomeRateLimited = "rate_limited"
)

// DefaultDedupWarnEvery is how often, at most, one source's dedup key
// failures are logged when [Options.DedupWarnEvery] is zero.
const DefaultDedupWarnEvery = 15 * time.Minute

// Handler serves the ingest endpoints. It is safe for concurrent use.
type Handler struct {
	store     store.Ingester
	catalog   *catalog.Catalog
	log       *slog.Logger
	now       func() time.Time
	onReq     func(string, string, time.Duration)
	onDedup   func(string)
	dedupWarn *warnLimiter
	tracer    trace.Tracer // nil: no tracing
	projects  *project.Projects
	// rejectedBody is Options.RejectedBodyBytes with its default; 0 keeps
	// nothing.
	rejectedBody int
}

// New returns a Handler that reads sources from cat and writes to s.
func New(s store.Ingester, cat *catalog.Catalog, opts *Options) *Handler {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.DedupWarnEvery <= 0 {
		o.DedupWarnEvery = DefaultDedupWarnEvery
	}
	switch {
	case o.RejectedBodyBytes == 0:
		o.RejectedBodyBytes = DefaultRejectedBodyBytes
	case o.RejectedBodyBytes < 0:
		o.RejectedBodyBytes = 0
	}
	h := &Handler{store: s, catalog: cat, log: o.Logger, now: o.Now, onReq: o.OnRequest, onDedup: o.OnDedupError,
		dedupWarn: newWarnLimiter(o.DedupWarnEvery), rejectedBody: o.RejectedBodyBytes, projects: o.Projects}
	if o.TracerProvider != nil {
		h.tracer = o.TracerProvider.Tracer(tracerName)
	}
	return h
}

// Register mounts the ingest routes on mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle("POST /e/{source}", h)
	mux.Handle("POST /e/{source}/{rest...}", h)
	// GET only ever answers a provider's handshake (Meta, Dropbox).
	mux.Handle("GET /e/{source}", h)
	mux.Handle("GET /e/{source}/{rest...}", h)
}

// Response is the JSON body of a 200.
type Response struct {
	RequestID string `json:"request_id"`
	EventID   string `json:"event_id"`
	Duplicate bool   `json:"duplicate"`
	// DedupError says why the request was accepted without deduplication
	// although its source has a dedup key ([store.Event.DedupError]).
	DedupError string `json:"dedup_error,omitempty"`
}

// errorBody is the JSON body of a refusal.
type errorBody struct {
	Error     string `json:"error"`
	RequestID string `json:"request_id,omitempty"`
}

// tracerName names the instrumentation scope of ingest spans.
const tracerName = "github.com/mailroomhq/mailroom/internal/ingest"

// Span attribute keys set by ingest and deliver.
const (
	attrSource    = attribute.Key("mailroom.source")
	attrOutcome   = attribute.Key("mailroom.outcome")
	attrEventID   = attribute.Key("mailroom.event_id")
	attrRequestID = attribute.Key("mailroom.request_id")
	attrDuplicate = attribute.Key("mailroom.duplicate")
	attrStatus    = attribute.Key("http.response.status_code")
)

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	// One snapshot for the whole request: the source, its expressions and
	// the fan-out all come from the same version of the catalog.
	snap := h.catalog.Current()
	name, path := sourcePath(snap, r)
	name, path = storable(name), storable(path)
	if h.tracer != nil {
		ctx := propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := h.tracer.Start(ctx, "POST /e/{source}", trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attrSource.String(name)))
		defer span.End()
		r = r.WithContext(ctx)
	}
	rec := &store.Request{
		Source:     name,
		ReceivedAt: start,
		Method:     r.Method,
		Path:       path,
		Query:      storable(r.URL.RawQuery),
		RemoteAddr: r.RemoteAddr,
	}
	outcome := h.serve(w, r, rec, snap)
	if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
		span.SetAttributes(attrOutcome.String(outcome))
		if outcome == OutcomeStorageError {
			span.SetStatus(codes.Error, "storage refused the request")
		}
	}
	if h.onReq != nil {
		h.onReq(name, outcome, h.now().Sub(start))
	}
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, rec *store.Request, snap *catalog.Snapshot) string {
	ctx := r.Context()
	src, ok := snap.Sources[rec.Source]
	if !ok {
		rec.Headers = redact.Credentials(r.Header)
		h.reject(w, r, rec, http.StatusNotFound, fmt.Sprintf("unknown source %q", rec.Source))
		return OutcomeUnknownSource
	}
	if ok, wait := h.projects.AllowIngest(src.Project, rec.ReceivedAt); !ok {
		// Not stored: a flood over the rate must not cost a write each.
		w.Header().Set("Retry-After", strconv.Itoa(int(max(1, math.Ceil(wait.Seconds())))))
		trace.SpanFromContext(ctx).SetAttributes(attrStatus.Int(http.StatusTooManyRequests))
		writeJSON(w, http.StatusTooManyRequests, errorBody{Error: fmt.Sprintf("project %q is over its ingest rate; retry later", src.Project)})
		return OutcomeRateLimited
	}
	rec.Headers = redact.Credentials(r.Header, src.Provider.Credentials(src.Verify)...)
	body, err := readBody(http.MaxBytesReader(w, r.Body, src.MaxBodyBytes), min(r.ContentLength, src.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.keepRejectedBody(rec, body, max(r.ContentLength, int64(len(body))), false)
			h.reject(w, r, rec, http.StatusRequestEntityTooLarge, fmt.Sprintf("body exceeds the source's limit of %d bytes", src.MaxBodyBytes))
			return OutcomeTooLarge
		}
		// The client went away or stalled: nothing to answer.
		h.keepRejectedBody(rec, body, int64(len(body)), false)
		rec.Reason = "read body: " + err.Error()
		h.reject(w, r, rec, http.StatusBadRequest, rec.Reason)
		return OutcomeBadRequest
	}
	vreq := verify.NewRequest(r, body, rec.ReceivedAt)
	if outcome, done := h.handshake(w, r, rec, src, vreq); done {
		return outcome
	}
	if r.Method != http.MethodPost {
		h.keepRejectedBody(rec, body, int64(len(body)), true)
		w.Header().Set("Allow", http.MethodPost)
		h.reject(w, r, rec, http.StatusMethodNotAllowed, "only POST is accepted; a GET is answered only as a provider's handshake")
		return OutcomeMethodNotAllowed
	}
	if err := src.Verifier.Verify(vreq); err != nil {
		h.keepRejectedBody(rec, body, int64(len(body)), true)
		h.reject(w, r, rec, http.StatusUnauthorized, "verification failed: "+err.Error())
		return OutcomeUnauthorized
	}
	rec.Body, rec.BodySize = body, int64(len(body))

	// The query parsed for the verifier (which does not change it).
	in := route.NewInput(rec.Source, rec.Path, vreq.Query, r.Header, body)
	ev := &store.Event{}
	if src.DedupKey != nil {
		key, err := src.DedupKey.EvalString(in)
		if err != nil {
			ev.DedupError = dedupError(err)
			h.dedupFailed(rec.Source, ev.DedupError)
		}
		ev.DedupKey = storable(key)
	}
	if src.EventType != nil {
		typ, _ := src.EventType.EvalString(in)
		ev.Type = storable(typ)
	}
	res, err := h.store.RequestIngest(ctx, &store.RequestIngestParams{
		Request: rec, Event: ev, DedupWindow: src.DedupWindow, Deliveries: snap.Deliveries(in),
	})
	if err != nil {
		h.log.Error("ingest: storage refused the request", "source", rec.Source, "err", err)
		trace.SpanFromContext(ctx).SetAttributes(attrStatus.Int(http.StatusServiceUnavailable))
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "storage unavailable; the request was not stored, retry later"})
		return OutcomeStorageError
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(attrStatus.Int(http.StatusOK), attrRequestID.String(res.RequestID),
			attrEventID.String(res.EventID), attrDuplicate.Bool(res.Duplicate))
	}
	writeAccepted(w, &Response{RequestID: res.RequestID, EventID: res.EventID, Duplicate: res.Duplicate, DedupError: ev.DedupError})
	if res.Duplicate {
		return OutcomeDuplicate
	}
	return OutcomeAccepted
}

// maxDedupError bounds the stored reason a dedup key could not be
// computed; the expression's error is short, but it quotes the expression.
const maxDedupError = 512

// dedupError is the reason stored with an event whose dedup key failed.
func dedupError(err error) string {
	msg := "dedup key not computed, accepted without deduplication: " + err.Error()
	if len(msg) > maxDedupError {
		msg = strings.ToValidUTF8(msg[:maxDedupError], "") + "…"
	}
	return msg
}

// dedupFailed counts a dedup key failure and logs it at warn level, at
// most once per source and interval.
func (h *Handler) dedupFailed(source, reason string) {
	if h.onDedup != nil {
		h.onDedup(source)
	}
	if suppressed, ok := h.dedupWarn.allow(source, h.now()); ok {
		h.log.Warn("ingest: dedup key not computed; requests of this source are accepted without deduplication",
			"source", source, "reason", reason, "since_last_warning", suppressed)
	}
}

// keepRejectedBody sets what rec keeps of the body of a request refused
// before it was verified: its size, its first [Options.RejectedBodyBytes]
// bytes (cut back to a UTF-8 boundary so that a text body stays text)
// and, when body is all of it (whole), its SHA-256 if the prefix is not.
func (h *Handler) keepRejectedBody(rec *store.Request, body []byte, size int64, whole bool) {
	rec.BodySize = size
	if len(body) <= h.rejectedBody {
		if len(body) > 0 {
			rec.Body = body
		}
		return
	}
	if whole {
		sum := sha256.Sum256(body)
		rec.BodySHA256 = hex.EncodeToString(sum[:])
	}
	n := h.rejectedBody
	for n > 0 && n > h.rejectedBody-utf8.UTFMax && !utf8.RuneStart(body[n]) {
		n--
	}
	if n > 0 {
		rec.Body = bytes.Clone(body[:n]) // not a slice of body: the rest must be freed
	}
}

// reject records a refused request, logs it and answers with status and
// reason. The log line is a warning (a refused webhook is a sender's
// secret or configuration to fix, or abuse): the logger rate-limits it per
// source and reason, and the dashboard and API list every one. A failure to record is logged but does not change the
// answer. The reason names what failed, never a secret or a signature.
func (h *Handler) reject(w http.ResponseWriter, r *http.Request, rec *store.Request, status int, reason string) {
	rec.Status, rec.Reason, rec.HTTPStatus = store.RequestRejected, reason, status
	id, err := h.store.RequestInsert(r.Context(), rec)
	if err != nil {
		h.log.Warn("ingest: record rejected request", "source", rec.Source, "reason", reason, "err", err)
	}
	h.log.Warn("ingest: request rejected", "source", rec.Source, "reason", reason, "status", status,
		"remote", rec.RemoteAddr, "request_id", id)
	if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
		span.SetAttributes(attrStatus.Int(status), attrRequestID.String(id))
	}
	if status == http.StatusRequestEntityTooLarge {
		w.Header().Set("Connection", "close")
	}
	writeJSON(w, status, errorBody{Error: reason, RequestID: id})
}

// sourcePath returns the full name of the source r's path names and the
// path after it. /e/{a}/{b}[/rest] names the source b of project a when
// the catalog has it, or when a is a project (with sources) and no
// default-project source is called a; otherwise it names the
// default-project source a, with /{b}[/rest] as its suffix. The config
// file and the API keep a default-project source from taking the name
// of a project, so the two readings never compete.
func sourcePath(snap *catalog.Snapshot, r *http.Request) (name, path string) {
	name, path = r.PathValue("source"), suffix(r)
	rest := r.PathValue("rest")
	if rest == "" {
		return name, path
	}
	seg, after, more := strings.Cut(rest, "/")
	full := name + "/" + seg
	if _, ok := snap.Sources[full]; !ok {
		if _, dflt := snap.Sources[name]; dflt || !snap.Projects[name] {
			return name, path
		}
	}
	path = ""
	if more {
		path = "/" + after
	}
	return full, path
}

// storable returns text taken from a request (the source name, path
// suffix and query of its request line, a dedup key or event type read
// from its body or headers) as every driver can store it and every client
// show it:
// itself when it is UTF-8 without NUL, else with each byte that is not
// UTF-8, and NUL, percent-encoded ("/%FF%FE"). The name and path are
// percent-decoded from the URL, the raw query and header values may carry
// any byte, a JSON string may hold \u0000; PostgreSQL's text refuses both,
// and a request it could not store would be refused as a storage failure
// every time it is sent. (A key "a%00b" is then the key of "a\x00b" too:
// only a sender that can post either could tell.)
func storable(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || r == 0 {
			fmt.Fprintf(&b, "%%%02X", s[i])
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// suffix returns the path after /e/{source}, or "".
func suffix(r *http.Request) string {
	rest := r.PathValue("rest")
	if rest == "" && !strings.HasSuffix(r.URL.Path, "/") {
		return ""
	}
	return "/" + rest
}

// maxBodyHint bounds the buffer [readBody] allocates up front from a
// request's Content-Length: a sender that announces a large body and
// sends nothing must not cost that memory. Past it the buffer grows as
// bytes arrive, as with io.ReadAll.
const maxBodyHint = 64 << 10

// readBody reads r to its end as io.ReadAll does (what was read, and the
// error that stopped it other than EOF), into one buffer sized from hint,
// the announced length (-1 when unknown), instead of growing one from 512
// bytes: a 1 KiB body took four allocations and three copies.
func readBody(r io.Reader, hint int64) ([]byte, error) {
	n := 512
	if hint >= 0 {
		n = int(min(hint, maxBodyHint)) + 1 // +1: room for the read that finds EOF
	}
	b := make([]byte, 0, n)
	for {
		m, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+m]
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // grow
		}
	}
}

// writeAccepted answers 200 with res, byte for byte what writeJSON
// writes, without encoding/json's reflection.
func writeAccepted(w http.ResponseWriter, res *Response) {
	b := make([]byte, 0, 128+len(res.DedupError))
	b = append(b, `{"request_id":`...)
	b = appendJSONString(b, res.RequestID)
	b = append(b, `,"event_id":`...)
	b = appendJSONString(b, res.EventID)
	b = append(b, `,"duplicate":`...)
	b = strconv.AppendBool(b, res.Duplicate)
	if res.DedupError != "" {
		b = append(b, `,"dedup_error":`...)
		b = appendJSONString(b, res.DedupError)
	}
	b = append(b, "}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// appendJSONString appends s as encoding/json encodes it (HTML characters
// escaped): as is when it needs no escape, which ids never do.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
