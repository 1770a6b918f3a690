package store

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mailroomhq/mailroom/internal/duration"
	"github.com/mailroomhq/mailroom/internal/verify"
)

// Duration is the config and API text form of a duration; see
// [duration.Duration].
type Duration = duration.Duration

// DedupConfig says how a source recognises a provider's retry of an event
// it has already accepted.
type DedupConfig struct {
	// Key is a CEL expression over {body, headers, query, path, source}
	// that yields the deduplication key. Empty means the provider default
	// (Stripe body.id, GitHub X-GitHub-Delivery, Shopify
	// X-Shopify-Webhook-Id, Standard Webhooks webhook-id); a source with no
	// default and no key is not deduplicated.
	Key string `yaml:"key,omitempty" json:"key,omitempty"`
	// Window is how long a key is remembered. Zero means 7 days.
	Window Duration `yaml:"window,omitempty" json:"window,omitempty"`
	// Disabled turns deduplication off for the source.
	Disabled bool `yaml:"disabled,omitempty" json:"disabled,omitempty"`
}

// DefaultDedupWindow is the dedup window when a source sets none.
const DefaultDedupWindow = 7 * 24 * time.Hour

// DefaultMaxBodyBytes is a source's body limit when it sets none.
const DefaultMaxBodyBytes = 10 << 20

// Source is a named ingest endpoint, POST /e/{name}.
type Source struct {
	// Name is the source's full name (see [FullName]): the short name,
	// prefixed "project/" outside the default project.
	Name string `yaml:"name" json:"name"`
	// Project owns the source; empty in the config file or the API means
	// the default project (or the one a full Name says). See [Source.Scope].
	Project string        `yaml:"project,omitempty" json:"project,omitempty"`
	Verify  verify.Config `yaml:"verify,omitempty" json:"verify"`
	Dedup   DedupConfig   `yaml:"dedup,omitempty" json:"dedup"`
	// MaxBodyBytes caps the request body. Zero means [DefaultMaxBodyBytes].
	MaxBodyBytes int64 `yaml:"max_body_bytes,omitempty" json:"max_body_bytes,omitempty"`
	// Description is free text for operators.
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	// ManagedBy says who owns the entry: [ManagedByConfig] or
	// [ManagedByAPI]. The store keeps it beside the spec.
	ManagedBy string    `yaml:"-" json:"managed_by"`
	CreatedAt time.Time `yaml:"-" json:"created_at"`
	UpdatedAt time.Time `yaml:"-" json:"updated_at"`
}

// RetryPolicy bounds a destination's automatic retries.
type RetryPolicy struct {
	// MaxAttempts is the total number of automatic attempts before a
	// delivery is dead. Zero means 8.
	MaxAttempts int `yaml:"max_attempts,omitempty" json:"max_attempts,omitempty"`
	// Initial is the first backoff ceiling. Zero means 1s.
	Initial Duration `yaml:"initial,omitempty" json:"initial,omitempty"`
	// Max caps the backoff and any Retry-After. Zero means 1h.
	Max Duration `yaml:"max,omitempty" json:"max,omitempty"`
	// RetryOn lists the non-2xx status codes that are retried. Empty means
	// every non-2xx status except 410 (which pauses the destination).
	RetryOn []int `yaml:"retry_on,omitempty" json:"retry_on,omitempty"`
}

// SignConfig says how mailroom signs what it delivers.
type SignConfig struct {
	// Type is "standard-webhooks" or empty for no signature.
	Type   string `yaml:"type,omitempty" json:"type,omitempty"`
	Secret string `yaml:"secret,omitempty" json:"secret,omitempty"`
}

// Destination is an HTTP endpoint that events are delivered to.
type Destination struct {
	// Name is the destination's full name, as a source's is.
	Name string `yaml:"name" json:"name"`
	// Project owns the destination (see [Source.Project]).
	Project string `yaml:"project,omitempty" json:"project,omitempty"`
	URL     string `yaml:"url" json:"url"`
	// Timeout bounds one attempt. Zero means 30s.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// MaxConcurrency bounds attempts in flight. Zero means 10.
	MaxConcurrency int `yaml:"max_concurrency,omitempty" json:"max_concurrency,omitempty"`
	// RateLimit is "N/s", "N/m" or "N/h"; empty means unlimited.
	RateLimit string      `yaml:"rate_limit,omitempty" json:"rate_limit,omitempty"`
	Retry     RetryPolicy `yaml:"retry,omitempty" json:"retry"`
	Sign      SignConfig  `yaml:"sign,omitempty" json:"sign"`
	// Headers are added to every delivery.
	Headers map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	// Ordered delivers in order of receipt, one at a time; a failing head
	// holds the rest until it succeeds or dies.
	Ordered bool `yaml:"ordered,omitempty" json:"ordered,omitempty"`
	// CircuitBreaker stops sending to a destination that keeps failing,
	// probes it at growing intervals and resumes on success. The zero
	// value is off.
	CircuitBreaker CircuitBreaker `yaml:"circuit_breaker,omitempty" json:"circuit_breaker,omitzero"`
	// Proxy sends this destination's deliveries through a proxy:
	// http://, https:// (CONNECT for https targets) or socks5://, with an
	// optional user:password. Empty means the delivery.proxy default, if
	// any; "direct" means no proxy even when there is a default.
	Proxy string `yaml:"proxy,omitempty" json:"proxy,omitempty"`
	// Auth authenticates deliveries to the receiver beyond the signature.
	Auth OutboundAuth `yaml:"auth,omitempty" json:"auth,omitzero"`
	// TLS presents a client certificate (mTLS) and trusts extra CAs.
	TLS ClientTLS `yaml:"tls,omitempty" json:"tls,omitzero"`
	// Circuit is runtime state: the circuit breaker's, shared by every
	// instance. The config file never sets it.
	Circuit CircuitState `yaml:"-" json:"circuit,omitzero"`
	// Paused is runtime state: a paused destination holds its deliveries.
	// The config file never sets it.
	Paused      bool      `yaml:"-" json:"paused"`
	PausedAt    time.Time `yaml:"-" json:"paused_at,omitzero"`
	PauseReason string    `yaml:"-" json:"pause_reason,omitempty"`
	// ManagedBy says who owns the entry: [ManagedByConfig] or
	// [ManagedByAPI]. The store keeps it beside the spec.
	ManagedBy string    `yaml:"-" json:"managed_by"`
	CreatedAt time.Time `yaml:"-" json:"created_at"`
	UpdatedAt time.Time `yaml:"-" json:"updated_at"`
}

// Outbound auth types ([OutboundAuth.Type]).
const (
	// AuthOAuth2ClientCredentials fetches an access token from TokenURL
	// with the client credentials grant (RFC 6749 §4.4), caches it until
	// it expires, and sends it as "Authorization: Bearer".
	AuthOAuth2ClientCredentials = "oauth2_client_credentials"
)

// OutboundAuth says how deliveries authenticate to their receiver. The
// zero value adds nothing (static headers and the signature still apply).
type OutboundAuth struct {
	// Type is [AuthOAuth2ClientCredentials] or empty.
	Type         string   `yaml:"type,omitempty" json:"type,omitempty"`
	TokenURL     string   `yaml:"token_url,omitempty" json:"token_url,omitempty"`
	ClientID     string   `yaml:"client_id,omitempty" json:"client_id,omitempty"`
	ClientSecret string   `yaml:"client_secret,omitempty" json:"client_secret,omitempty"`
	Scopes       []string `yaml:"scopes,omitempty" json:"scopes,omitempty"`
	// Audience, if set, is sent as the token request's audience
	// parameter (Auth0, Okta and others want it).
	Audience string `yaml:"audience,omitempty" json:"audience,omitempty"`
}

// ClientTLS is the TLS a destination's deliveries use beyond the system's
// defaults. Files are read when the destination is (re)loaded; a file that
// cannot be read holds the destination's deliveries with the error.
type ClientTLS struct {
	// CertFile and KeyFile hold the client certificate chain and its key
	// (PEM), presented to receivers that ask for one (mTLS). Both or
	// neither.
	CertFile string `yaml:"cert_file,omitempty" json:"cert_file,omitempty"`
	KeyFile  string `yaml:"key_file,omitempty" json:"key_file,omitempty"`
	// CAFile holds extra CA certificates (PEM) trusted for the receiver,
	// besides the system's.
	CAFile string `yaml:"ca_file,omitempty" json:"ca_file,omitempty"`
	// ServerName overrides the name the receiver's certificate must carry.
	ServerName string `yaml:"server_name,omitempty" json:"server_name,omitempty"`
}

// Defaults for zero [CircuitBreaker] fields.
const (
	DefaultCircuitWindow      = time.Minute
	DefaultCircuitMinAttempts = 20
	DefaultCircuitCooldown    = 30 * time.Second
	DefaultCircuitMaxCooldown = 30 * time.Minute
)

// CircuitBreaker configures a destination's circuit breaker: when the
// destination keeps failing, stop sending (its deliveries wait, pending,
// and use up no attempts), send one probe after a cooldown, and resume on
// a successful probe or open again for twice as long. It is off unless
// Failures or ErrorRatio is set.
type CircuitBreaker struct {
	// Failures opens the circuit after this many failed attempts in a row.
	// Zero leaves this condition out.
	Failures int `yaml:"failures,omitempty" json:"failures,omitempty"`
	// ErrorRatio opens the circuit when at least this fraction (0 to 1) of
	// the attempts of the last Window failed, once MinAttempts were made
	// in it. Zero leaves this condition out.
	ErrorRatio float64 `yaml:"error_ratio,omitempty" json:"error_ratio,omitempty"`
	// Window is the span ErrorRatio looks at. Zero means
	// [DefaultCircuitWindow].
	Window Duration `yaml:"window,omitempty" json:"window,omitempty"`
	// MinAttempts is how many attempts Window must hold before ErrorRatio
	// applies. Zero means [DefaultCircuitMinAttempts].
	MinAttempts int `yaml:"min_attempts,omitempty" json:"min_attempts,omitempty"`
	// Cooldown is how long the circuit stays open before the first probe;
	// each failed probe doubles it, up to MaxCooldown. Zero means
	// [DefaultCircuitCooldown].
	Cooldown Duration `yaml:"cooldown,omitempty" json:"cooldown,omitempty"`
	// MaxCooldown caps the cooldown. Zero means [DefaultCircuitMaxCooldown].
	MaxCooldown Duration `yaml:"max_cooldown,omitempty" json:"max_cooldown,omitempty"`
}

// Enabled reports whether the breaker is on.
func (c CircuitBreaker) Enabled() bool { return c.Failures > 0 || c.ErrorRatio > 0 }

// Circuit states ([CircuitState.State]).
const (
	CircuitClosed   = ""          // deliveries flow
	CircuitOpen     = "open"      // nothing is sent until ProbeAt
	CircuitHalfOpen = "half_open" // one probe is in flight until ProbeAt
)

// CircuitState is a destination's circuit breaker state. The zero value
// is closed.
type CircuitState struct {
	State string `json:"state,omitempty"`
	// Since is when the circuit entered State.
	Since time.Time `json:"since,omitzero"`
	// ProbeAt is, while open, when a probe may go; while half-open, when
	// the probe's lease ends (an instance that died mid-probe leaves it to
	// another after that).
	ProbeAt time.Time `json:"probe_at,omitzero"`
	// Opens counts the openings since the circuit last closed; it sets the
	// cooldown (Cooldown × 2^(Opens-1), capped).
	Opens int `json:"opens,omitempty"`
	// Reason says why the circuit opened.
	Reason string `json:"reason,omitempty"`
}

// Connection routes a source's events to a destination, optionally through
// a CEL filter over {body, headers, query, path, source}.
type Connection struct {
	// ID is "source->destination" unless set; like the ends, a full name
	// (prefixed "project/" outside the default project).
	ID string `yaml:"id,omitempty" json:"id"`
	// Project owns the connection and both its ends (see [Connection.Scope]).
	Project     string `yaml:"project,omitempty" json:"project,omitempty"`
	Source      string `yaml:"source" json:"source"`
	Destination string `yaml:"destination" json:"destination"`
	Filter      string `yaml:"filter,omitempty" json:"filter,omitempty"`
	// Transform is a JavaScript transformation of the request delivered
	// through the connection: a script that defines
	// handler(request, event) and returns the request to send (see
	// package transform). Empty means none.
	Transform string `yaml:"transform,omitempty" json:"transform,omitempty"`
	// Retry are retry policies by event type: the first rule whose types
	// match an event's type replaces the destination's retry policy for
	// the deliveries of that event through this connection. Empty: the
	// destination's policy for every event. See [RetryRule].
	Retry []RetryRule `yaml:"retry,omitempty" json:"retry,omitempty"`
	// ManagedBy says who owns the entry: [ManagedByConfig] or
	// [ManagedByAPI].
	ManagedBy string    `yaml:"-" json:"managed_by"`
	CreatedAt time.Time `yaml:"-" json:"created_at"`
	UpdatedAt time.Time `yaml:"-" json:"updated_at"`
}

// Owners of a catalog entry (the ManagedBy of [Source], [Destination] and
// [Connection]).
const (
	// ManagedByConfig marks an entry declared in the config file. The file
	// owns it: [Store.CatalogSync] updates it as the file says and removes
	// it when the file no longer declares it, and the admin API refuses to
	// change it.
	ManagedByConfig = "config"
	// ManagedByAPI marks an entry created through the admin API (or
	// written before ownership was recorded). A config sync leaves it
	// alone unless the file declares an entry of the same name, which
	// then takes it over.
	ManagedByAPI = "api"
)

// ManagedByOrAPI returns owner, or [ManagedByAPI] when it is empty: what
// an upsert records for an entry that names no owner.
func ManagedByOrAPI(owner string) string {
	if owner == "" {
		return ManagedByAPI
	}
	return owner
}

// ConnectionID returns the default id of a connection from source to dest
// (full names of one project): "source->dest" of their short names, in
// their project.
func ConnectionID(source, dest string) string {
	return FullName(ProjectOf(source), ShortName(source)+"->"+ShortName(dest))
}

// Request statuses.
const (
	RequestAccepted  = "accepted"  // verified and persisted with an event
	RequestRejected  = "rejected"  // refused (bad signature, too large...), recorded with a reason
	RequestDuplicate = "duplicate" // verified, but its dedup key was already seen
	RequestHandshake = "handshake" // a provider's endpoint check, answered by the source; no event
)

// Request is one inbound HTTP request as received, accepted or not.
type Request struct {
	ID string `json:"id"`
	// Project is the project of the source (or destination): set by the
	// store from the full name ([ProjectOf]).
	Project    string      `json:"project"`
	Source     string      `json:"source"`
	ReceivedAt time.Time   `json:"received_at"`
	Method     string      `json:"method"`
	Path       string      `json:"path"`
	Query      string      `json:"query,omitempty"`
	Headers    http.Header `json:"headers"`
	// Body is the body as received; for a request refused before it was
	// verified, only its first bytes (see BodySize and BodySHA256).
	Body []byte `json:"body,omitempty"`
	// BodySize is the size of the body as received, which is more than
	// len(Body) when only a prefix was kept. Zero when it was not read
	// (unknown source).
	BodySize int64 `json:"body_size"`
	// BodySHA256 is the hex SHA-256 of the whole body as received, set
	// when only a prefix was kept and the body was read whole (a failed
	// verification), so that an operator can match it against what the
	// sender says it sent.
	BodySHA256 string `json:"body_sha256,omitempty"`
	RemoteAddr string `json:"remote_addr,omitempty"`
	Status     string `json:"status"`
	// Reason explains a rejection ("signature mismatch", "body too large").
	Reason string `json:"reason,omitempty"`
	// HTTPStatus is the status mailroom answered with.
	HTTPStatus int `json:"http_status"`
	// EventID is the event this request created, or for a duplicate the
	// event it duplicates.
	EventID string `json:"event_id,omitempty"`
}

// Event statuses.
const (
	EventRouted  = "routed"  // one or more deliveries were created
	EventIgnored = "ignored" // no connection matched
)

// Event is an accepted, deduplicated request that the pipeline acts on.
type Event struct {
	ID string `json:"id"`
	// Project is the project of the source (or destination): set by the
	// store from the full name ([ProjectOf]).
	Project    string    `json:"project"`
	Source     string    `json:"source"`
	RequestID  string    `json:"request_id"`
	ReceivedAt time.Time `json:"received_at"`
	// Type is the provider's event type where it has one
	// ("checkout.session.completed", "push", "orders/create").
	Type     string `json:"type,omitempty"`
	DedupKey string `json:"dedup_key,omitempty"`
	// DedupError says why the event has no DedupKey although its source
	// has a key expression: the expression failed on this request, or
	// yielded what cannot be a key. The event was accepted without
	// deduplication. Empty when the key was computed or the source has
	// none.
	DedupError string `json:"dedup_error,omitempty"`
	Status     string `json:"status"`
	// Deliveries counts the deliveries created for the event.
	Deliveries int `json:"deliveries"`
}

// Delivery statuses.
const (
	DeliveryPending   = "pending"   // waiting for its next attempt (or in flight under a lease)
	DeliverySucceeded = "succeeded" // a 2xx was received
	DeliveryDead      = "dead"      // out of attempts; retryable by hand
)

// Delivery is one event on its way to one destination.
type Delivery struct {
	ID string `json:"id"`
	// Project is the project of the source (or destination): set by the
	// store from the full name ([ProjectOf]).
	Project      string `json:"project"`
	EventID      string `json:"event_id"`
	RequestID    string `json:"request_id"`
	Source       string `json:"source"`
	Destination  string `json:"destination"`
	ConnectionID string `json:"connection_id"`
	Status       string `json:"status"`
	// Attempts counts attempts started. It is also the fencing token of a
	// claim: an attempt is recorded only if Attempts has not moved on.
	Attempts int `json:"attempts"`
	// NextAttemptAt is when the delivery is next due; while an attempt is
	// in flight it is the lease expiry.
	NextAttemptAt time.Time `json:"next_attempt_at"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	LastError     string    `json:"last_error,omitempty"`
	LastStatus    int       `json:"last_status,omitempty"`
	// Retry is the retry policy that decided what became of the delivery
	// after its last attempt, and what it decided; nil before the first
	// attempt is recorded.
	Retry *RetryApplied `json:"retry,omitempty"`
}

// Attempt is one HTTP try of a delivery.
type Attempt struct {
	ID          string `json:"id"`
	DeliveryID  string `json:"delivery_id"`
	EventID     string `json:"event_id"`
	Destination string `json:"destination"`
	// Project is the destination's project (see [Delivery.Project]).
	Project         string      `json:"project"`
	Number          int         `json:"number"`
	StartedAt       time.Time   `json:"started_at"`
	DurationMS      float64     `json:"duration_ms"`
	StatusCode      int         `json:"status_code,omitempty"`
	ResponseHeaders http.Header `json:"response_headers,omitempty"`
	ResponseBody    []byte      `json:"response_body,omitempty"`
	Error           string      `json:"error,omitempty"`
	Success         bool        `json:"success"`
}

// ParseRate reads a rate limit written "N/s", "N/m" or "N/h" (N may be
// fractional) and returns events per second. An empty string means no limit
// and returns 0.
func ParseRate(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	num, unit, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("invalid rate %q (want e.g. 50/s, 600/m, 1000/h)", s)
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || n <= 0 || math.IsInf(n, 0) || math.IsNaN(n) {
		return 0, fmt.Errorf("invalid rate %q: count must be a positive number", s)
	}
	switch strings.TrimSpace(unit) {
	case "s", "sec", "second":
		return n, nil
	case "m", "min", "minute":
		return n / 60, nil
	case "h", "hour":
		return n / 3600, nil
	}
	return 0, fmt.Errorf("invalid rate %q: unit must be s, m or h", s)
}
