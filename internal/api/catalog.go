package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode"

	"github.com/mailroomhq/mailroom/internal/catalog"
	"github.com/mailroomhq/mailroom/internal/redact"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/verify"
)

// Mask is what the API shows in place of a secret ([redact.Mask]). A PUT
// that sends it back unchanged keeps the stored secret.
const Mask = redact.Mask

// maxNameLen bounds source and destination names and connection ids.
const maxNameLen = 200

// checkName refuses names that cannot sit in a URL path segment as is.
func checkName(field, name string) error {
	if name == "" {
		return badf("%s is required", field)
	}
	if len(name) > maxNameLen {
		return badf("%s is longer than %d bytes", field, maxNameLen)
	}
	if !validText(name) {
		return badf("%s holds control characters or invalid UTF-8", field)
	}
	if i := strings.IndexFunc(name, func(c rune) bool { return unicode.IsSpace(c) || strings.ContainsRune(`/\?#%`, c) }); i >= 0 {
		return badf("%s %q holds %q; names may not hold spaces or any of / \\ ? # %%", field, name, name[i:i+1])
	}
	if name == "." || name == ".." {
		return badf("%s may not be %q", field, name)
	}
	return nil
}

// checkPathName refuses a body that names another resource than its path.
func checkPathName(field, inBody, inPath string) error {
	if inBody != "" && inBody != inPath {
		return badf("%s %q in the body does not match %q in the path; renaming is not supported", field, inBody, inPath)
	}
	return nil
}

// reload swaps in the catalog after a change, so that ingest on this
// instance sees it at once. It outlives a client that hangs up, since the
// change is already stored.
func (a *Server) reload(r *http.Request) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), reloadTimeout)
	defer cancel()
	if err := a.catalog.Load(ctx); err != nil {
		a.log.Warn("api: reload catalog after change", "err", err)
	}
}

// keepSecret returns in, or old when in is the [Mask] and exists says
// there is a stored value to keep.
func keepSecret(field, in, old string, exists bool) (string, error) {
	if in != Mask {
		return in, nil
	}
	if !exists || old == "" {
		return "", badf("%s: %q is the mask the API shows for a secret; send the secret itself", field, Mask)
	}
	return old, nil
}

// ---- sources ----

// viewSource returns a copy of s with its secrets masked.
func viewSource(s *store.Source) *store.Source {
	c := redact.Source(*s)
	return &c
}

// restoreSourceSecrets puts stored secrets back where in sends the mask.
func restoreSourceSecrets(in, old *store.Source) error {
	exists := old != nil
	var ov verify.Config
	if exists {
		ov = old.Verify
	}
	var err error
	if in.Verify.Secret, err = keepSecret("verify.secret", in.Verify.Secret, ov.Secret, exists); err != nil {
		return err
	}
	if in.Verify.Password, err = keepSecret("verify.password", in.Verify.Password, ov.Password, exists); err != nil {
		return err
	}
	if slices.Contains(in.Verify.Secrets, Mask) {
		if !exists || !slices.Equal(in.Verify.Secrets, redact.Verify(ov).Secrets) {
			return badf("verify.secrets: send the secrets in full, or the masked list exactly as the API showed it to keep them")
		}
		in.Verify.Secrets = slices.Clone(ov.Secrets)
	}
	return nil
}

// validateSource checks s as ingest will use it: the verifier builds and
// the expressions compile.
func (a *Server) validateSource(s *store.Source) error {
	switch {
	case s.MaxBodyBytes < 0:
		return badf("max_body_bytes must not be negative")
	case s.Dedup.Window < 0:
		return badf("dedup.window must not be negative")
	case s.Verify.Tolerance < 0:
		return badf("verify.tolerance must not be negative")
	}
	if _, err := verify.New(s.Verify, nil); err != nil {
		if msg := err.Error(); strings.HasPrefix(msg, "verify") {
			return badf("%s", msg)
		}
		return badf("verify: %v", err)
	}
	if _, err := catalog.CompileSource(a.catalog.Compiler(), s, nil); err != nil {
		// The message names the source, which the client knows, then the
		// field at fault.
		return badf("%s", strings.TrimPrefix(err.Error(), "source "+s.Name+": "))
	}
	return nil
}

// writeStored answers a create or replace with the resource as stored:
// 201 with a Location when it was created, else 200.
func (a *Server) writeStored(w http.ResponseWriter, r *http.Request, created bool, path string, get func(context.Context) (any, error)) {
	v, err := get(r.Context())
	if err != nil {
		a.fail(w, r, err, "the resource was deleted while it was being written")
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		w.Header().Set("Location", Prefix+pathEscapeName(path))
	}
	writeJSON(w, status, v)
}

// pathEscapeName escapes the last segment of path.
func pathEscapeName(path string) string {
	dir, name, _ := strings.Cut(path, "/")
	return dir + "/" + url.PathEscape(name)
}

// ---- destinations ----

// viewDestination returns a copy of d with its signing secret, sensitive
// header values and URL password masked.
func viewDestination(d *store.Destination) *store.Destination {
	c := redact.Destination(*d)
	return &c
}

// restoreDestinationSecrets puts stored secrets back where in sends what
// the API showed in their place.
func restoreDestinationSecrets(in, old *store.Destination) error {
	exists := old != nil
	var ov store.Destination
	if exists {
		ov = *old
	}
	var err error
	if in.Sign.Secret, err = keepSecret("sign.secret", in.Sign.Secret, ov.Sign.Secret, exists); err != nil {
		return err
	}
	for k, v := range in.Headers {
		if v != Mask {
			continue
		}
		kept, found := "", false
		for ok, ovv := range ov.Headers {
			if strings.EqualFold(ok, k) {
				kept, found = ovv, true
				break
			}
		}
		if in.Headers[k], err = keepSecret("headers."+k, v, kept, found); err != nil {
			return err
		}
	}
	if exists && in.URL != ov.URL && in.URL == redact.URL(ov.URL) {
		in.URL = ov.URL
	}
	return nil
}

// validateDestination checks what the dispatcher will rely on.
func validateDestination(d *store.Destination) error {
	if d.URL == "" {
		return badf("url is required")
	}
	u, err := url.Parse(d.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return badf("url: %q is not an absolute http or https URL", redact.URL(d.URL))
	}
	if _, err := store.ParseRate(d.RateLimit); err != nil {
		return badf("rate_limit: %v", err)
	}
	switch {
	case d.Timeout < 0:
		return badf("timeout must not be negative")
	case d.MaxConcurrency < 0:
		return badf("max_concurrency must not be negative")
	case d.Retry.MaxAttempts < 0:
		return badf("retry.max_attempts must not be negative")
	case d.Retry.Initial < 0:
		return badf("retry.initial must not be negative")
	case d.Retry.Max < 0:
		return badf("retry.max must not be negative")
	case d.Retry.Initial > 0 && d.Retry.Max > 0 && d.Retry.Initial > d.Retry.Max:
		return badf("retry.initial (%s) must not exceed retry.max (%s)", d.Retry.Initial, d.Retry.Max)
	}
	for _, code := range d.Retry.RetryOn {
		if code < 100 || code > 599 {
			return badf("retry.retry_on: %d is not an HTTP status code", code)
		}
	}
	switch d.Sign.Type {
	case "":
		if d.Sign.Secret != "" {
			return badf("sign.type is required when sign.secret is set (want %q)", verify.TypeStandardWebhooks)
		}
	case verify.TypeStandardWebhooks:
		if d.Sign.Secret == "" {
			return badf("sign.secret is required when sign.type is %q", d.Sign.Type)
		}
	default:
		return badf("sign.type: unknown signing scheme %q (want %q or none)", d.Sign.Type, verify.TypeStandardWebhooks)
	}
	for k, v := range d.Headers {
		if k == "" || strings.IndexFunc(k, func(c rune) bool { return !isTokenChar(c) }) >= 0 {
			return badf("headers: %q is not a valid header name", k)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return badf("headers.%s: the value holds a line break or NUL", k)
		}
	}
	return nil
}

// isTokenChar reports whether c may appear in an HTTP header name
// (RFC 9110 token).
func isTokenChar(c rune) bool {
	return c < 0x7f && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", c))
}

// pauseBody is the optional body of a pause.
type pauseBody struct {
	Reason string `json:"reason"`
}

// DefaultPauseReason is recorded when a pause gives no reason.
const DefaultPauseReason = "paused through the API"

func (a *Server) destinationPause(w http.ResponseWriter, r *http.Request) {
	var in pauseBody
	if err := decode(w, r, &in, true); err != nil {
		a.fail(w, r, err, "")
		return
	}
	if in.Reason == "" {
		in.Reason = DefaultPauseReason
	}
	if len(in.Reason) > 1000 || !validText(in.Reason) {
		a.fail(w, r, badf("reason must be at most 1000 bytes of text without control characters"), "")
		return
	}
	a.setPaused(w, r, true, in.Reason)
}

func (a *Server) destinationResume(w http.ResponseWriter, r *http.Request) {
	if err := decode(w, r, &struct{}{}, true); err != nil {
		a.fail(w, r, err, "")
		return
	}
	a.setPaused(w, r, false, "")
}

func (a *Server) setPaused(w http.ResponseWriter, r *http.Request, paused bool, reason string) {
	name := r.PathValue("name")
	if err := a.store.DestinationSetPaused(r.Context(), name, paused, reason); err != nil {
		a.fail(w, r, err, fmt.Sprintf("destination %q not found", name))
		return
	}
	a.reload(r)
	a.writeStored(w, r, false, "", func(ctx context.Context) (any, error) {
		d, err := a.store.DestinationGet(ctx, name)
		if err != nil {
			return nil, err
		}
		return viewDestination(d), nil
	})
}

// ---- connections ----

// validateConnection checks that both ends exist and the filter compiles.
// A missing end is a 400: the body is wrong, not the path.
func (a *Server) validateConnection(ctx context.Context, c *store.Connection) error {
	if c.Source == "" {
		return badf("source is required")
	}
	if c.Destination == "" {
		return badf("destination is required")
	}
	if _, err := a.store.SourceGet(ctx, c.Source); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return badf("source %q does not exist", c.Source)
		}
		return err
	}
	if _, err := a.store.DestinationGet(ctx, c.Destination); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return badf("destination %q does not exist", c.Destination)
		}
		return err
	}
	if c.Filter != "" {
		if _, err := a.catalog.Compiler().CompileFilter(c.Filter); err != nil {
			return badf("filter: %v", err)
		}
	}
	return nil
}
