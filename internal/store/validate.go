package store

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/mailroomhq/mailroom/internal/redact"
	"github.com/mailroomhq/mailroom/internal/verify"
)

// The rules below are the one statement of what a catalog entry may hold.
// The config file, the admin API and the dispatcher all check entries with
// them, so that what one accepts the others do not refuse later.

// MaxRetryAttempts is the largest retry.max_attempts a destination may set.
const MaxRetryAttempts = 1000

// nameRE is what a source or destination name looks like: it appears in
// URLs (/e/{name}) and logs, so it is kept short and plain.
var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$`)

// connectionIDRE is what a connection id looks like; the default id
// "source->destination" of two valid names matches it.
var connectionIDRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.>-]{0,128}$`)

// FieldError is one problem with one field of a catalog entry. Field is
// the path within the entry ("retry.max_attempts"), so that a config file
// can prefix it with the entry's place ("destinations[2].").
type FieldError struct {
	Field string
	Err   error
}

// Error formats e as "field: reason".
func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns the reason.
func (e *FieldError) Unwrap() error { return e.Err }

// FieldErrors returns the [*FieldError] values inside err, as joined by the
// Validate methods, in order.
func FieldErrors(err error) []*FieldError {
	var out []*FieldError
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var fe *FieldError
		if errors.As(err, &fe) {
			out = append(out, fe)
		}
	}
	if err != nil {
		walk(err)
	}
	return out
}

// problems collects the field errors of one entry.
type problems []error

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, &FieldError{Field: field, Err: fmt.Errorf(format, args...)})
}

func (p problems) err() error { return errors.Join(p...) }

// CheckName checks a source or destination name: 1 to 64 letters, digits,
// '_', '.' or '-', starting with a letter or digit, prefixed "project/"
// (a project name of the same form, not the default one) outside the
// default project ([FullName]).
func CheckName(name string) error {
	if err := checkProjectPrefix(name); err != nil {
		return err
	}
	short := ShortName(name)
	switch {
	case short == "":
		return errors.New("required")
	case !nameRE.MatchString(short):
		return fmt.Errorf("invalid name %q: use 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit", short)
	}
	return nil
}

// checkProjectPrefix checks the project of a full name, if it has one.
func checkProjectPrefix(full string) error {
	p, _, ok := strings.Cut(full, "/")
	switch {
	case !ok:
		return nil
	case p == DefaultProject:
		return fmt.Errorf("invalid name %q: the default project's names have no project prefix", full)
	}
	return CheckProject(p)
}

// CheckConnectionID checks an explicit connection id (a full name, as
// [CheckName] has it).
func CheckConnectionID(id string) error {
	if err := checkProjectPrefix(id); err != nil {
		return err
	}
	if !connectionIDRE.MatchString(ShortName(id)) {
		return fmt.Errorf("invalid id %q: use up to 129 letters, digits, '_', '.', '-' or '>', starting with a letter or digit", ShortName(id))
	}
	return nil
}

// Validate checks what ingest relies on in a source, other than its name
// ([CheckName]) and what needs other packages (the verifier building, the
// dedup key compiling), and returns every problem as a [*FieldError],
// joined.
func (s *Source) Validate() error {
	var p problems
	if s.MaxBodyBytes < 0 {
		p.add("max_body_bytes", "must not be negative")
	}
	if s.Dedup.Window < 0 {
		p.add("dedup.window", "must not be negative")
	}
	if s.Verify.Tolerance < 0 {
		p.add("verify.tolerance", "must not be negative")
	}
	return p.err()
}

// Validate checks what the dispatcher relies on in a destination, other
// than its name ([CheckName]), its signing secret included (read as the
// verify package reads it), and returns every problem as a [*FieldError],
// joined. Messages never quote a URL's password.
func (d *Destination) Validate() error {
	var p problems
	if err := checkURL(d.URL); err != nil {
		p.add("url", "%v", err)
	}
	if d.Timeout < 0 {
		p.add("timeout", "must not be negative")
	}
	if d.MaxConcurrency < 0 {
		p.add("max_concurrency", "must not be negative")
	}
	if _, err := ParseRate(d.RateLimit); err != nil {
		p.add("rate_limit", "%v", err)
	}
	r := d.Retry
	if r.MaxAttempts < 0 || r.MaxAttempts > MaxRetryAttempts {
		p.add("retry.max_attempts", "%d is out of range (want 0 to %d; 0 means the default)", r.MaxAttempts, MaxRetryAttempts)
	}
	if r.Initial < 0 {
		p.add("retry.initial", "must not be negative")
	}
	if r.Max < 0 {
		p.add("retry.max", "must not be negative")
	}
	if r.Initial > 0 && r.Max > 0 && r.Initial > r.Max {
		p.add("retry.initial", "%s is longer than retry.max %s", r.Initial, r.Max)
	}
	for j, code := range r.RetryOn {
		if code < 100 || code > 599 {
			p.add("retry.retry_on["+strconv.Itoa(j)+"]", "%d is not an HTTP status code (want 100 to 599)", code)
		}
	}
	if d.Sign.Type == "" {
		if d.Sign.Secret != "" {
			p.add("sign.type", "required when sign.secret is set (want %q)", verify.TypeStandardWebhooks)
		}
	} else if err := verify.CheckOutbound(d.Sign.Type, d.Sign.Secret); err != nil {
		var ce *verify.ConfigError
		if errors.As(err, &ce) {
			p.add("sign."+ce.Field, "%v", ce.Err)
		} else {
			p.add("sign.type", "%v", err)
		}
	}
	cb := d.CircuitBreaker
	if cb.Failures < 0 {
		p.add("circuit_breaker.failures", "must not be negative")
	}
	if !(cb.ErrorRatio >= 0 && cb.ErrorRatio <= 1) { // NaN too
		p.add("circuit_breaker.error_ratio", "%g is out of range (want 0 to 1)", cb.ErrorRatio)
	}
	if cb.MinAttempts < 0 {
		p.add("circuit_breaker.min_attempts", "must not be negative")
	}
	for _, f := range []struct {
		name string
		v    Duration
	}{{"window", cb.Window}, {"cooldown", cb.Cooldown}, {"max_cooldown", cb.MaxCooldown}} {
		if f.v < 0 {
			p.add("circuit_breaker."+f.name, "must not be negative")
		}
	}
	if cb.Cooldown > 0 && cb.MaxCooldown > 0 && cb.Cooldown > cb.MaxCooldown {
		p.add("circuit_breaker.cooldown", "%s is longer than circuit_breaker.max_cooldown %s", cb.Cooldown, cb.MaxCooldown)
	}
	for _, name := range slices.Sorted(maps.Keys(d.Headers)) {
		if !isToken(name) {
			p.add("headers."+name, "invalid header name %q", name)
		}
		if strings.ContainsAny(d.Headers[name], "\r\n\x00") {
			p.add("headers."+name, "header value must not contain CR, LF or NUL")
		}
	}
	d.checkEgress(&p)
	return p.err()
}

// Validate checks a connection's own fields: both ends named, an explicit
// id well formed, its retry rules (see [RetryRule]). Whether the ends
// exist and the filter compiles is for the caller, who knows the catalog
// and the compiler.
func (c *Connection) Validate() error {
	var p problems
	if c.Source == "" {
		p.add("source", "required")
	}
	if c.Destination == "" {
		p.add("destination", "required")
	}
	if c.ID != "" {
		if err := CheckConnectionID(c.ID); err != nil {
			p.add("id", "%v", err)
		}
	}
	// A connection stays within one project.
	project := ProjectOf(c.Source)
	if c.Destination != "" && ProjectOf(c.Destination) != project {
		p.add("destination", "%q is not in the source's project %q", c.Destination, project)
	}
	if c.ID != "" && ProjectOf(c.ID) != project {
		p.add("id", "%q is not in the source's project %q", c.ID, project)
	}
	c.validateRetry(&p)
	return p.err()
}

// checkURL checks a destination URL: absolute http(s), a host, a port in
// range.
func checkURL(raw string) error {
	if raw == "" {
		return errors.New("required, e.g. https://example.com/hooks")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("invalid URL")
	}
	shown := redact.URL(raw)
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q must be an absolute http:// or https:// URL", shown)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("%q has no host", shown)
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q: port must be a number from 1 to 65535", shown)
		}
	}
	return nil
}

// isToken reports whether s is an HTTP header name (an RFC 9110 token).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// checkEgress checks a destination's proxy, outbound auth and TLS.
func (d *Destination) checkEgress(p *problems) {
	if d.Proxy != "" && d.Proxy != ProxyDirect {
		if err := CheckProxyURL(d.Proxy); err != nil {
			p.add("proxy", "%v", err)
		}
	}
	switch a := d.Auth; a.Type {
	case "":
		if a.TokenURL != "" || a.ClientID != "" || a.ClientSecret != "" || len(a.Scopes) > 0 || a.Audience != "" {
			p.add("auth.type", "required when other auth fields are set (want %q)", AuthOAuth2ClientCredentials)
		}
	case AuthOAuth2ClientCredentials:
		if err := checkURL(a.TokenURL); err != nil {
			p.add("auth.token_url", "%v", err)
		}
		if a.ClientID == "" {
			p.add("auth.client_id", "required for type %q", a.Type)
		}
		if a.ClientSecret == "" {
			p.add("auth.client_secret", "required for type %q", a.Type)
		}
	default:
		p.add("auth.type", "unknown type %q (want %s, or leave it out)", a.Type, AuthOAuth2ClientCredentials)
	}
	if (d.TLS.CertFile == "") != (d.TLS.KeyFile == "") {
		p.add("tls.key_file", "tls.cert_file and tls.key_file go together")
	}
}

// ProxyDirect as a destination's proxy means no proxy, whatever the
// default.
const ProxyDirect = "direct"

// CheckProxyURL checks a proxy URL: http, https or socks5 (socks5h), with
// a host and a valid port.
func CheckProxyURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("invalid proxy URL")
	}
	shown := raw
	if _, ok := u.User.Password(); ok {
		shown = u.Redacted()
	}
	switch u.Scheme {
	case "http", "https", "socks5", "socks5h":
	default:
		return fmt.Errorf("%q: want an http://, https:// or socks5:// proxy URL (or %q)", shown, ProxyDirect)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("%q has no host", shown)
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q: port must be a number from 1 to 65535", shown)
		}
	}
	return nil
}
