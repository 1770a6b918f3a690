package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/mailroomhq/mailroom/internal/audit"
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
	c := s.Redacted()
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
	if in.Verify.VerifyToken, err = keepSecret("verify.verify_token", in.Verify.VerifyToken, ov.VerifyToken, exists); err != nil {
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
	if err := s.Validate(); err != nil {
		return invalid(err)
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
	c := d.Redacted()
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
	if in.Auth.ClientSecret, err = keepSecret("auth.client_secret", in.Auth.ClientSecret, ov.Auth.ClientSecret, exists); err != nil {
		return err
	}
	if exists && in.URL != ov.URL && in.URL == redact.URL(ov.URL) {
		in.URL = ov.URL
	}
	if exists && in.Proxy != ov.Proxy && in.Proxy == redact.URL(ov.Proxy) {
		in.Proxy = ov.Proxy
	}
	return nil
}

// validateDestination checks d by [store.Destination.Validate], the rules
// the config file and the dispatcher apply too.
func validateDestination(d *store.Destination) error {
	if err := d.Validate(); err != nil {
		return invalid(err)
	}
	return nil
}

// invalid turns the field errors of a Validate method into one 400.
func invalid(err error) error {
	var msgs []string
	for _, fe := range store.FieldErrors(err) {
		msgs = append(msgs, fe.Error())
	}
	if len(msgs) == 0 {
		return badf("%v", err)
	}
	return badf("%s", strings.Join(msgs, "; "))
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
	name, _, ok := a.destinationsResource().pathKey(a, w, r)
	if !ok {
		return
	}
	if old, err := a.store.DestinationGet(r.Context(), name); err == nil {
		audit.Before(r.Context(), viewDestination(old))
	}
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

// validateConnection checks that both ends exist, the filter compiles
// and the transformation compiles and defines its handler.
// A missing end is a 400: the body is wrong, not the path.
func (a *Server) validateConnection(ctx context.Context, c *store.Connection) error {
	if err := c.Validate(); err != nil {
		return invalid(err)
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
	if c.Transform != "" {
		if _, err := a.catalog.CompileTransform(c.Transform); err != nil {
			return badf("transform: %v", err)
		}
	}
	return nil
}
