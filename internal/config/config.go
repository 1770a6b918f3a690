// Package config reads mailroom's YAML config file into one validated
// [Config]. It owns the file format: the field names, their defaults,
// ${VAR} expansion, the MAILROOM_* environment overrides and the checks
// that run before anything starts listening. Every problem it finds is an
// [*Error] naming the file, the line and the field.
//
// It does not act on the config. cmd/mailroom calls [Load], applies
// [Config.ApplyEnv] and its flags, calls [Config.Validate] again, and hands
// each package its own options; no other package reads files, flags or the
// environment. Checks that need other packages (signature schemes, CEL
// expressions) come in through [Options] hooks, so this package imports
// only the store's row types.
package config

import (
	"cmp"
	"fmt"
	"os"
	"reflect"
	"time"

	"github.com/mailroomhq/mailroom/internal/project"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/verify"
)

// Defaults of the top-level settings.
const (
	// DefaultListen is the listen address when none is set: loopback only,
	// so that a fresh install is not reachable from the network.
	DefaultListen = "127.0.0.1:8080"
	// DefaultStorage is the storage DSN when none is set: a SQLite file in
	// the working directory.
	DefaultStorage = "sqlite://./mailroom.db"
	// DefaultLogLevel is the log level when none is set.
	DefaultLogLevel = "info"
	// DefaultLogFormat is the log format when none is set.
	DefaultLogFormat = "text"
	// DefaultShutdownGrace is how long a shutdown lets in-flight requests
	// and deliveries finish when no grace is set.
	DefaultShutdownGrace = 10 * time.Second
	// DefaultRetention is how long requests, events, finished deliveries
	// and attempts are kept when no retention is set: 30 days.
	DefaultRetention = 30 * 24 * time.Hour
	// DefaultAlertConsecutiveFailures is alerts.consecutive_failures when
	// it is not set.
	DefaultAlertConsecutiveFailures = 10
	// DefaultAlertDeadDeliveries is alerts.dead_deliveries when it is not
	// set.
	DefaultAlertDeadDeliveries = 1
	// DefaultAuditRetention is how long audit log entries are kept when
	// api.audit_retention is not set: 365 days.
	DefaultAuditRetention = 365 * 24 * time.Hour
	// MinRetention is the shortest retention accepted, so that a typo
	// ("720s" for "720h") cannot prune what was received a minute ago.
	MinRetention = time.Hour
)

// Config is the whole of mailroom's configuration. The zero value is not
// useful; start from [Default] or [Parse]. A Config is not safe for
// concurrent modification.
type Config struct {
	// Listen is the host:port the HTTP server listens on. Empty means
	// [DefaultListen].
	Listen string `yaml:"listen"`
	// Storage is the storage DSN, read by [ParseStorage]. Empty means
	// [DefaultStorage].
	Storage string `yaml:"storage"`
	// API configures the admin API.
	API APIConfig `yaml:"api"`
	// MCP configures the MCP server at /mcp.
	MCP MCPConfig `yaml:"mcp"`
	// Upstreams are MCP servers that mailroom fronts: their tools,
	// resources and prompts appear on /mcp, namespaced by upstream name.
	Upstreams []UpstreamConfig `yaml:"upstreams"`
	// AsyncTools turn upstream tools into task-returning tools that
	// complete when a correlated webhook arrives.
	AsyncTools []AsyncToolConfig `yaml:"async_tools"`
	// Log configures logging.
	Log LogConfig `yaml:"log"`
	// Shutdown configures graceful shutdown.
	Shutdown ShutdownConfig `yaml:"shutdown"`
	// Alerts configures alerts on failing destinations.
	Alerts AlertsConfig `yaml:"alerts"`
	// Delivery says which non-public addresses destinations may reach.
	Delivery DeliveryConfig `yaml:"delivery"`
	// Transformations bounds the runs of the connections' JavaScript
	// transformations.
	Transformations TransformationsConfig `yaml:"transformations"`
	// Ingest tunes the ingest endpoints as a whole.
	Ingest IngestConfig `yaml:"ingest"`
	// Retention is how long history (requests, events, finished
	// deliveries, attempts) is kept before it is pruned; pending
	// deliveries are never pruned. Zero means [DefaultRetention]; at least
	// [MinRetention].
	Retention store.Duration `yaml:"retention"`
	// Projects declares projects and their limits. Entries (sources,
	// destinations, connections) name their project with project:, or
	// belong to the default one; a project an entry names must be
	// declared here, except "default".
	Projects []project.Config `yaml:"projects"`
	// Sources are the ingest endpoints declared in the file.
	Sources []store.Source `yaml:"sources"`
	// Destinations are the delivery targets declared in the file.
	Destinations []store.Destination `yaml:"destinations"`
	// Connections route sources to destinations. Each names a source and
	// a destination declared in the same file.
	Connections []store.Connection `yaml:"connections"`

	// src records where each field was read from; nil when the Config
	// was not parsed from a file.
	src *source
	// env records the fields that environment variables overrode.
	env map[string]envSet
}

// MCPConfig configures the MCP server.
type MCPConfig struct {
	// Disabled turns /mcp off.
	Disabled bool `yaml:"disabled"`
	// Tokens are per-client bearer tokens for /mcp, besides api.token
	// (whose identity is "api"). Each name is the identity its tasks
	// belong to.
	Tokens []MCPToken `yaml:"tokens"`
	// AllowedOrigins are browser origins (scheme://host[:port]) allowed on
	// /mcp besides the server's own, e.g. a browser MCP client on another
	// port.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// EventsExtension turns on the experimental draft MCP Events
	// extension (events/list, events/poll, events/stream).
	EventsExtension bool `yaml:"events_extension"`
	// OAuth makes /mcp an OAuth 2.1 resource server that accepts access
	// tokens of the authorization servers it names, besides the static
	// tokens.
	OAuth MCPOAuthConfig `yaml:"oauth"`
}

// MCPOAuthConfig configures OAuth for /mcp (the MCP authorization
// specification). It is on when Resource or AuthorizationServers is set;
// [Options.CheckMCPOAuth] checks it.
type MCPOAuthConfig struct {
	// Resource is the public URL of /mcp
	// (https://mailroom.example.com/mcp): the audience tokens must name,
	// and the resource of the protected resource metadata.
	Resource string `yaml:"resource"`
	// AuthorizationServers are the issuer URLs of the authorization
	// servers whose tokens are accepted.
	AuthorizationServers []string `yaml:"authorization_servers"`
	// JWKSURL is where the (single) authorization server's signing keys
	// are. Empty means the jwks_uri of its metadata.
	JWKSURL string `yaml:"jwks_url"`
	// IntrospectionURL, if set, is the RFC 7662 endpoint used for tokens
	// that are not JWTs.
	IntrospectionURL string `yaml:"introspection_url"`
	// ClientID and ClientSecret authenticate mailroom to the
	// introspection endpoint.
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"`
	// Scopes are the scopes every token must carry. Empty means
	// mailroom:mcp.
	Scopes []string `yaml:"scopes"`
	// Algorithms are the JWS algorithms accepted. Empty means the
	// asymmetric ones (RS*, PS*, ES*, EdDSA).
	Algorithms []string `yaml:"algorithms"`
	// Leeway is the clock skew allowed on exp, nbf and iat. Zero means
	// 30s.
	Leeway store.Duration `yaml:"leeway"`
}

// Enabled reports whether OAuth is configured.
func (o MCPOAuthConfig) Enabled() bool { return o.Resource != "" || len(o.AuthorizationServers) > 0 }

// UpstreamConfig is one upstream MCP server: a Streamable HTTP URL, or a
// stdio command.
type UpstreamConfig struct {
	// Name prefixes the upstream's tools and prompts ("pay" makes
	// create_payment_link appear as pay__create_payment_link).
	Name string `yaml:"name"`
	// URL of a Streamable HTTP server.
	URL string `yaml:"url"`
	// Headers are sent with every HTTP request (tokens).
	Headers map[string]string `yaml:"headers"`
	// Command runs a stdio server: program and arguments.
	Command []string `yaml:"command"`
	// Env adds environment variables for Command.
	Env map[string]string `yaml:"env"`
	// Timeout bounds one forwarded call. Zero means 60s.
	Timeout store.Duration `yaml:"timeout"`
}

// AsyncToolConfig turns an upstream tool into a task-returning tool. When
// the forwarded call returns, the Match expressions (CEL over `result`,
// the tool result, and `arguments`, the call's arguments) give the values
// that event body paths must equal.
type AsyncToolConfig struct {
	// Tool is the namespaced tool name (upstream__tool).
	Tool string `yaml:"tool"`
	// Source, Type, Match and Filter describe the completing event.
	Source string            `yaml:"source"`
	Type   string            `yaml:"type"`
	Match  map[string]string `yaml:"match"`
	// Filter is a CEL expression over the event, as in connections.
	Filter string `yaml:"filter"`
	// Timeout fails the task when no event came. Zero means 24h.
	Timeout store.Duration `yaml:"timeout"`
	// Fail names an event that fails the task instead; unset when it
	// has no type, match or filter.
	Fail AsyncFailConfig `yaml:"fail"`
}

// IsSet reports whether a failure event is configured.
func (f AsyncFailConfig) IsSet() bool { return f.Type != "" || len(f.Match) > 0 || f.Filter != "" }

// AsyncFailConfig is the event that fails an async tool's task.
type AsyncFailConfig struct {
	// Source defaults to the tool's source.
	Source string            `yaml:"source"`
	Type   string            `yaml:"type"`
	Match  map[string]string `yaml:"match"`
	Filter string            `yaml:"filter"`
}

// MCPToken is one MCP client's bearer token.
type MCPToken struct {
	Name  string `yaml:"name"`
	Token string `yaml:"token"`
}

// APIConfig configures the admin API.
type APIConfig struct {
	// Token is the bearer token the admin API requires. Empty means no
	// authentication, which cmd/mailroom allows on a loopback listener
	// only.
	Token string `yaml:"token"`
	// AllowedHosts are names besides the listener's own that the Host
	// header of an operator request (API, dashboard, /metrics, /mcp) may
	// carry: the public name a reverse proxy forwards, or a DNS name of
	// the listener. "name" accepts any port, "name:port" that port, "*"
	// any Host. Others are refused (DNS rebinding).
	AllowedHosts []string `yaml:"allowed_hosts"`
	// AuditRetention is how long audit log entries are kept before they
	// are pruned. Zero means [DefaultAuditRetention]; at least
	// [MinRetention].
	AuditRetention store.Duration `yaml:"audit_retention"`
}

// MaxRejectedBodyBytes is the largest ingest.rejected_body_bytes.
const MaxRejectedBodyBytes = 1 << 20

// IngestConfig tunes the ingest endpoints.
type IngestConfig struct {
	// RejectedBodyBytes is how much of the body of a request refused
	// before verification (bad signature, too large) is stored; its size
	// and SHA-256 are stored besides. Zero means the ingest package's
	// default (4 KiB); at most [MaxRejectedBodyBytes].
	RejectedBodyBytes int `yaml:"rejected_body_bytes"`
}

// LogConfig configures logging.
type LogConfig struct {
	// Level is debug, info, warn or error. Empty means [DefaultLogLevel].
	Level string `yaml:"level"`
	// Format is text or json. Empty means [DefaultLogFormat].
	Format string `yaml:"format"`
}

// AlertsConfig configures alerts on failing destinations: an alert opens
// when either condition holds and resolves at the destination's next
// successful attempt.
type AlertsConfig struct {
	// Disabled turns alerts off.
	Disabled bool `yaml:"disabled"`
	// ConsecutiveFailures opens an alert after this many failed attempts
	// in a row to one destination. Zero means
	// [DefaultAlertConsecutiveFailures].
	ConsecutiveFailures int `yaml:"consecutive_failures"`
	// DeadDeliveries opens an alert when this many deliveries to one
	// destination have died. Zero means [DefaultAlertDeadDeliveries].
	DeadDeliveries int `yaml:"dead_deliveries"`
	// URL, if set, receives a Slack-compatible {"text": "..."} POST when
	// an alert opens and when it resolves. It is a credential: keep it in
	// the environment (${ALERT_WEBHOOK_URL}).
	URL string `yaml:"url"`
}

// ShutdownConfig configures graceful shutdown.
type ShutdownConfig struct {
	// Grace bounds how long a shutdown waits for in-flight HTTP requests
	// and delivery attempts before cancelling them. Zero means
	// [DefaultShutdownGrace].
	Grace store.Duration `yaml:"grace"`
}

// Options are the hooks and inputs of [Parse], [Load] and
// [Config.Validate]. A nil *Options is the same as a zero one.
type Options struct {
	// LookupEnv resolves ${VAR} references in the file. If nil,
	// os.LookupEnv is used.
	LookupEnv func(string) (string, bool)
	// CheckVerify, if non-nil, is called with each source's verify block
	// and returns an error if it is invalid; cmd/mailroom wires verify.New.
	// (A destination's signing secret is checked by
	// [store.Destination.Validate].) An error whose text starts
	// "verify.KEY: " is reported on that key's line.
	CheckVerify func(verify.Config) error
	// CheckExpr, if non-nil, is called with each dedup key and returns an
	// error if the expression does not compile; cmd/mailroom wires the
	// CEL compiler.
	CheckExpr func(expr string) error
	// CheckFilter, if non-nil, is called with each filter (connections,
	// async tools and their failure events) and returns an error if it
	// does not compile to a bool; cmd/mailroom wires the CEL compiler, the
	// same check the API and wait tasks use.
	CheckFilter func(expr string) error
	// CheckTransform, if non-nil, is called with each connection's
	// transformation script and the file's transformations bounds, and
	// returns an error if the script does not compile or defines no
	// handler within them; cmd/mailroom wires transform.Compile, the check
	// the API makes.
	CheckTransform func(script string, bounds TransformationsConfig) error
	// CheckMCPOAuth, if non-nil, is called with mcp.oauth when it is
	// enabled and returns an error if it is invalid; cmd/mailroom wires
	// the constructor of the MCP authenticator. An error whose text starts
	// "KEY: " or "KEY[i]: " is reported on that key's line.
	CheckMCPOAuth func(MCPOAuthConfig) error
}

// Default returns the configuration used when there is no config file:
// the defaults of every setting and no sources, destinations or
// connections. It passes [Config.Validate].
func Default() *Config {
	c := &Config{}
	c.fillDefaults()
	return c
}

// fillDefaults sets every empty top-level setting to its default.
func (c *Config) fillDefaults() {
	c.Listen = cmp.Or(c.Listen, DefaultListen)
	c.Storage = cmp.Or(c.Storage, DefaultStorage)
	c.Log.Level = cmp.Or(c.Log.Level, DefaultLogLevel)
	c.Log.Format = cmp.Or(c.Log.Format, DefaultLogFormat)
	c.Shutdown.Grace = cmp.Or(c.Shutdown.Grace, store.Duration(DefaultShutdownGrace))
	c.Alerts.ConsecutiveFailures = cmp.Or(c.Alerts.ConsecutiveFailures, DefaultAlertConsecutiveFailures)
	c.Alerts.DeadDeliveries = cmp.Or(c.Alerts.DeadDeliveries, DefaultAlertDeadDeliveries)
	c.Retention = cmp.Or(c.Retention, store.Duration(DefaultRetention))
	c.API.AuditRetention = cmp.Or(c.API.AuditRetention, store.Duration(DefaultAuditRetention))
}

// Load reads the file at path and parses it with [Parse]; errors name the
// file as path.
func Load(path string, opts *Options) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, path, opts)
}

// Parse decodes a YAML config, expands ${VAR} references in its values,
// fills in defaults and validates the result as [Config.Validate] does.
// filename is used in error messages only.
//
// Unknown fields, duplicate keys, values of the wrong type, unset
// variables and every validation problem are reported together, sorted by
// line, as [*Error] values joined with [errors.Join]. On error the
// returned Config is nil.
//
// Expansion happens after parsing and only inside scalar values, so a
// variable's value can never add keys or list items: ${VAR} is replaced by
// the variable's value (an error if it is unset), ${VAR:-default} by the
// value or, if it is unset or empty, by default, and $$ by a single $. A $
// not followed by { or $ is kept as is. A reference may stand unquoted in
// a flow collection ({secret: ${SECRET}}): references are set aside while
// the YAML is parsed, so their braces are not read as structure.
//
// Anchors, aliases and << merge keys work as in YAML. Top-level keys that
// start with "x-" are ignored, as a place to keep anchors.
func Parse(data []byte, filename string, opts *Options) (*Config, error) {
	if opts == nil {
		opts = &Options{}
	}
	lookup := opts.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	c := &Config{src: newSource(filename)}
	d := &decoder{file: filename, lookup: lookup, src: c.src, budget: maxNodes}
	d.document(data, c)
	c.fillDefaults()
	c.src.snapshot(c)

	v := &validator{c: c, opts: opts}
	v.run()
	errs := d.errs
	for _, e := range v.errs {
		if !d.failed(e.Field) {
			errs = append(errs, e)
		}
	}
	if err := joinErrors(errs); err != nil {
		return nil, err
	}
	return c, nil
}

// Validate checks c as a whole and returns every problem as an [*Error],
// joined with [errors.Join], or nil. It calls opts' hooks if set. Errors
// about values read from a file carry its name and line; values changed
// since (by [Config.ApplyEnv] or by hand) are reported without a line,
// naming the environment variable when there is one.
//
// Validate does not modify c.
func (c *Config) Validate(opts *Options) error {
	if opts == nil {
		opts = &Options{}
	}
	v := &validator{c: c, opts: opts}
	v.run()
	return joinErrors(v.errs)
}

// Reloadable settings: [Config.CheckReload] lets these differ from the
// running config; every other setting is read only at start.
var reloadable = map[string]bool{"sources": true, "destinations": true, "connections": true, "log.level": true}

// IsReloadable reports whether the setting at field path (a top-level key
// such as "sources", or "log.level") takes effect on a reload without a
// restart.
func IsReloadable(field string) bool { return reloadable[field] }

// CheckReload compares c, a newly read config, with running, the config
// in force, and returns an [*Error] (joined with [errors.Join]) for each
// setting that differs but takes effect only at start, on its line in c's
// file. Only the catalog (sources, destinations, connections) and
// log.level can change on a reload; a reload that would change anything
// else must change nothing, rather than apply part of the file and leave
// the operator believing the rest took effect (a rotated token that is in
// fact still the old one). Values are not quoted: some are secrets.
func (c *Config) CheckReload(running *Config) error {
	v := &validator{c: c, opts: &Options{}}
	next, cur := reflect.ValueOf(c).Elem(), reflect.ValueOf(running).Elem()
	walkSchema(next.Type(), "", func(field string, _ reflect.Type) {
		if reloadable[field] {
			return
		}
		a, errA := fieldByPath(next, field)
		b, errB := fieldByPath(cur, field)
		if errA != nil || errB != nil || !reflect.DeepEqual(a.Interface(), b.Interface()) {
			v.errf(field, "changed, but it is read only at start: restart mailroom to apply it (nothing was reloaded)")
		}
	})
	return joinErrors(v.errs)
}
