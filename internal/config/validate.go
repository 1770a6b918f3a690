package config

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/mailroomhq/mailroom/internal/project"
	"github.com/mailroomhq/mailroom/internal/redact"
	"github.com/mailroomhq/mailroom/internal/store"
)

// validator checks a Config and collects every problem.
type validator struct {
	c    *Config
	opts *Options
	errs []*Error
}

// errf records a problem with field.
func (v *validator) errf(field, format string, args ...any) {
	v.add(field, fmt.Errorf(format, args...))
}

func (v *validator) add(field string, err error) {
	e := &Error{Field: field, Err: err}
	if name := v.envOrigin(field); name != "" {
		e.Err = fmt.Errorf("%w (set by %s)", err, name)
	} else {
		e.File, e.Line = v.c.where(field)
	}
	v.errs = append(v.errs, e)
}

// envOrigin returns the environment variable that set field, if any.
func (v *validator) envOrigin(field string) string {
	cur := topValues(v.c)
	for f, set := range v.c.env {
		// Only while the value is still the one the variable set: a flag
		// may have overridden it since (flags set top-level values only).
		if now, ok := cur[f]; within(field, f) && (!ok || now == set.value) {
			return set.name
		}
	}
	return ""
}

// lineOf returns the line field was read from, for "first at line N".
func (v *validator) lineOf(field string) string {
	if file, line := v.c.where(field); file != "" && line > 0 {
		return "line " + strconv.Itoa(line)
	}
	return field
}

func (v *validator) run() {
	v.top()
	v.projects()
	sources := v.sources()
	dests := v.destinations()
	v.connections(sources, dests)
}

// projects checks the declared projects: each valid, each once.
func (v *validator) projects() {
	first := make(map[string]string)
	for i, p := range v.c.Projects {
		f := "projects[" + strconv.Itoa(i) + "]"
		v.entry(f, p.Validate(MinRetention))
		if p.Name == "" {
			continue
		}
		if at, dup := first[p.Name]; dup {
			v.errf(f+".name", "duplicate project %q (first at %s)", p.Name, v.lineOf(at))
		} else {
			first[p.Name] = f + ".name"
		}
	}
}

// fullName checks an entry's name (field) and project (field's sibling
// project, p), and returns the name it has in its project
// ([store.FullName]), or "" when either is wrong. In the file a name is
// always short: the project is said with project:.
func (v *validator) fullName(p, field, name, proj string) string {
	ok := true
	if proj != "" && !v.declaredProject(p+".project", proj) {
		ok = false
	}
	if strings.Contains(name, "/") {
		v.errf(p+"."+field, "invalid name %q: a name holds no '/'; put the entry in a project with project:", name)
		return ""
	}
	if !ok || name == "" {
		return ""
	}
	return store.FullName(proj, name)
}

// checkedFullName is [validator.fullName] of a source or destination
// name, which must also pass [store.CheckName].
func (v *validator) checkedFullName(p, name, proj string) string {
	if strings.Contains(name, "/") {
		return v.fullName(p, "name", name, proj)
	}
	ok := v.checkName(p+".name", name)
	full := v.fullName(p, "name", name, proj)
	if !ok {
		return ""
	}
	return full
}

// isProject reports whether name is a declared project.
func (v *validator) isProject(name string) bool {
	for _, p := range v.c.Projects {
		if p.Name == name {
			return true
		}
	}
	return false
}

// declaredProject checks that project is "default" or declared under
// projects:.
func (v *validator) declaredProject(field, project string) bool {
	if project == store.DefaultProject || v.isProject(project) {
		return true
	}
	var names []string
	for _, p := range v.c.Projects {
		names = append(names, p.Name)
	}
	if len(names) == 0 {
		v.errf(field, "unknown project %q: declare it under projects: (none are declared)", project)
	} else {
		v.errf(field, "unknown project %q: declare it under projects: (declared: %s)", project, strings.Join(names, ", "))
	}
	return false
}

// top checks the top-level settings.
func (v *validator) top() {
	c := v.c
	if err := checkListen(c.Listen); err != nil {
		v.add("listen", err)
	}
	if _, _, err := ParseStorage(c.Storage); err != nil {
		v.add("storage", err)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		v.errf("log.level", "unknown level %q (want debug, info, warn or error)", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		v.errf("log.format", "unknown format %q (want text or json)", c.Log.Format)
	}
	if c.Shutdown.Grace < 0 {
		v.errf("shutdown.grace", "must not be negative")
	}
	if c.Retention.D() < MinRetention {
		v.errf("retention", "%s is shorter than the minimum %s (history older than the retention is deleted)", c.Retention, store.Duration(MinRetention))
	}
	v.api()
	if n := c.Ingest.RejectedBodyBytes; n < 0 || n > MaxRejectedBodyBytes {
		v.errf("ingest.rejected_body_bytes", "%d is out of range: 0 (the default, 4096) to %d", n, MaxRejectedBodyBytes)
	}
	v.mcp()
	v.proxy()
	v.alerts()
	v.delivery()
	v.transformations()
}

// alerts checks the alerts section: no negative thresholds, an absolute
// http(s) URL. The URL is a credential, so messages do not quote it.
func (v *validator) alerts() {
	a := v.c.Alerts
	if a.ConsecutiveFailures < 0 {
		v.errf("alerts.consecutive_failures", "must not be negative")
	}
	if a.DeadDeliveries < 0 {
		v.errf("alerts.dead_deliveries", "must not be negative")
	}
	if a.URL != "" {
		if u, err := url.Parse(a.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.errf("alerts.url", "is not an absolute http or https URL")
		}
	}
}

// proxy checks upstreams and async tools.
func (v *validator) proxy() {
	names := map[string]bool{}
	for i, u := range v.c.Upstreams {
		field := fmt.Sprintf("upstreams[%d]", i)
		if !v.checkName(field+".name", u.Name) {
			continue
		}
		if strings.Contains(u.Name, "__") {
			v.errf(field+".name", "must not contain %q (it separates upstream and tool names)", "__")
		}
		if names[u.Name] {
			v.errf(field+".name", "upstream %q is declared twice", u.Name)
		}
		names[u.Name] = true
		switch {
		case u.URL == "" && len(u.Command) == 0:
			v.errf(field, "set url (Streamable HTTP) or command (stdio)")
		case u.URL != "" && len(u.Command) > 0:
			v.errf(field, "set url or command, not both")
		case u.URL != "":
			if p, err := url.Parse(u.URL); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
				v.errf(field+".url", "%q is not an http(s) URL", u.URL)
			}
		}
		if u.Timeout < 0 {
			v.errf(field+".timeout", "must not be negative")
		}
	}
	for i, a := range v.c.AsyncTools {
		field := fmt.Sprintf("async_tools[%d]", i)
		up, _, ok := strings.Cut(a.Tool, "__")
		if !ok || !names[up] {
			v.errf(field+".tool", "%q must name an upstream tool as upstream__tool%s", a.Tool, known("upstreams", names))
		}
		if a.Source == "" {
			v.errf(field+".source", "is required: the source whose event completes the task")
		}
		if len(a.Match) == 0 && a.Filter == "" {
			v.errf(field+".match", "set match or filter: without one, any event of the source would complete every task")
		}
		if a.Timeout < 0 {
			v.errf(field+".timeout", "must not be negative")
		}
		v.filter(field+".filter", a.Filter)
		v.filter(field+".fail.filter", a.Fail.Filter)
	}
}

// filter checks a CEL filter at field, if one is set.
func (v *validator) filter(field, expr string) {
	if expr == "" || v.opts.CheckFilter == nil {
		return
	}
	if err := v.opts.CheckFilter(expr); err != nil {
		v.add(field, err)
	}
}

// mcp checks the MCP section: named, distinct, non-empty tokens.
func (v *validator) mcp() {
	seen := map[string]bool{}
	for i, t := range v.c.MCP.Tokens {
		field := fmt.Sprintf("mcp.tokens[%d]", i)
		if t.Name == "" || t.Name == "api" {
			v.errf(field+".name", "must be set and not %q (the identity of api.token)", "api")
		}
		if strings.HasPrefix(t.Name, "oauth:") {
			v.errf(field+".name", "must not start with %q (the identities of OAuth access tokens)", "oauth:")
		}
		if len(t.Token) < 16 {
			v.errf(field+".token", "must be at least 16 characters")
		}
		if seen[t.Token] || (t.Token != "" && t.Token == v.c.API.Token) {
			v.errf(field+".token", "is used twice; each client needs its own token")
		}
		seen[t.Token] = true
	}
	if o := v.c.MCP.OAuth; o.Enabled() && v.opts.CheckMCPOAuth != nil {
		if err := v.opts.CheckMCPOAuth(o); err != nil {
			v.keyError("mcp.oauth", err)
		}
	}
	for i, o := range v.c.MCP.AllowedOrigins {
		if u, err := url.Parse(o); err != nil || u.Scheme == "" || u.Host == "" {
			v.errf(fmt.Sprintf("mcp.allowed_origins[%d]", i), "%q is not an origin (want scheme://host[:port])", o)
		}
	}
}

// api checks the api section: allowed hosts are names or name:port, or
// "*". Errors quote the item, on the line of the list's key.
func (v *validator) api() {
	for _, h := range v.c.API.AllowedHosts {
		if err := checkAllowedHost(h); err != nil {
			v.add("api.allowed_hosts", err)
		}
	}
	if r := v.c.API.AuditRetention; r.D() < MinRetention {
		v.errf("api.audit_retention", "%s is shorter than the minimum %s (audit entries older than it are deleted)", r, store.Duration(MinRetention))
	}
}

// checkAllowedHost checks one api.allowed_hosts entry.
func checkAllowedHost(h string) error {
	bad := fmt.Errorf("%q is not a host name or host:port (no scheme, path or wildcard other than a lone \"*\"), e.g. mailroom.example.com", h)
	if h == "*" {
		return nil
	}
	if h == "" || strings.ContainsAny(h, "/@ *?#") {
		return bad
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return nil // a bare IPv6 address
	}
	if strings.Contains(h, ":") {
		host, port, err := net.SplitHostPort(h)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			return bad
		}
	}
	return nil
}

// checkListen checks a host:port listen address.
func checkListen(addr string) error {
	if addr == "" {
		return errors.New("required, e.g. 127.0.0.1:8080")
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (e.g. 127.0.0.1:8080 or :8080)", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port must be a number from 0 to 65535", addr)
	}
	return nil
}

// checkName checks a source, destination or upstream name.
func (v *validator) checkName(field, name string) bool {
	if err := store.CheckName(name); err != nil {
		v.add(field, err)
		return false
	}
	return true
}

// entry reports the problems an entry's own Validate found, each on its
// field under prefix p.
func (v *validator) entry(p string, err error) {
	for _, fe := range store.FieldErrors(err) {
		v.add(p+"."+fe.Field, fe.Err)
	}
}

// sources checks the sources and returns their names.
func (v *validator) sources() map[string]bool {
	names := make(map[string]bool)
	first := make(map[string]string)
	for i, s := range v.c.Sources {
		p := "sources[" + strconv.Itoa(i) + "]"
		if full := v.checkedFullName(p, s.Name, s.Project); full != "" {
			if f, dup := first[full]; dup {
				v.errf(p+".name", "duplicate source name %q%s (first at %s)", s.Name, inProject(s.Project), v.lineOf(f))
			} else {
				first[full] = p + ".name"
			}
			names[full] = true
			if store.ProjectOf(full) == store.DefaultProject && v.isProject(full) {
				v.errf(p+".name", "%v", store.IngestPathClash(full))
			}
		}
		if v.opts.CheckVerify != nil {
			if err := v.opts.CheckVerify(s.Verify); err != nil {
				v.verifyError(p+".verify", err)
			}
		}
		v.entry(p, s.Validate())
		if s.Dedup.Key != "" && v.opts.CheckExpr != nil {
			if err := v.opts.CheckExpr(s.Dedup.Key); err != nil {
				v.add(p+".dedup.key", err)
			}
		}
	}
	return names
}

// keyError reports an error from a check of block on the key the error
// names when its text starts "KEY: " or "KEY[i]: ", or on block.
func (v *validator) keyError(block string, err error) {
	if key, reason, ok := strings.Cut(err.Error(), ": "); ok && key != "" && !strings.ContainsAny(key, " .") {
		v.add(block+"."+key, &fieldError{msg: reason, err: err})
		return
	}
	v.add(block, err)
}

// verifyError reports an error from CheckVerify on block, or on the key
// the error names when its text starts "verify.KEY: ".
func (v *validator) verifyError(block string, err error) {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "verify."); ok {
		if key, reason, ok := strings.Cut(rest, ": "); ok && key != "" && !strings.ContainsAny(key, " .") {
			v.add(block+"."+key, &fieldError{msg: reason, err: err})
			return
		}
	}
	v.add(block, err)
}

// destinations checks the destinations and returns their names.
func (v *validator) destinations() map[string]bool {
	names := make(map[string]bool)
	first := make(map[string]string)
	perProject := make(map[string]int)
	limits := project.New(v.c.Projects)
	for i, d := range v.c.Destinations {
		p := "destinations[" + strconv.Itoa(i) + "]"
		if full := v.checkedFullName(p, d.Name, d.Project); full != "" {
			if f, dup := first[full]; dup {
				v.errf(p+".name", "duplicate destination name %q%s (first at %s)", d.Name, inProject(d.Project), v.lineOf(f))
			} else {
				first[full] = p + ".name"
			}
			names[full] = true
			proj := store.ProjectOf(full)
			perProject[proj]++
			if err := limits.CheckNewDestination(proj, perProject[proj]-1); err != nil {
				v.add(p, err)
			}
		}
		v.entry(p, d.Validate())
	}
	return names
}

// connections checks the connections against the sources and destinations
// declared in the file.
func (v *validator) connections(sources, dests map[string]bool) {
	first := make(map[string]string)
	for i, c := range v.c.Connections {
		p := "connections[" + strconv.Itoa(i) + "]"
		v.entry(p, c.Validate())
		src := v.fullName(p, "source", c.Source, c.Project)
		dst := v.fullName(p, "destination", c.Destination, "")
		if c.Project != "" && dst != "" {
			dst = store.FullName(c.Project, dst)
		}
		if c.ID != "" {
			v.fullName(p, "id", c.ID, "")
		}
		if src != "" && !sources[src] {
			v.errf(p+".source", "unknown source %q%s%s", c.Source, inProject(c.Project), known("sources", sources))
		}
		if dst != "" && !dests[dst] {
			v.errf(p+".destination", "unknown destination %q%s%s", c.Destination, inProject(c.Project), known("destinations", dests))
		}
		if id := store.FullName(c.Project, cmp.Or(c.ID, store.ConnectionID(c.Source, c.Destination))); c.ID != "" || (c.Source != "" && c.Destination != "") {
			if f, dup := first[id]; dup {
				v.errf(p, "duplicate connection %q (first at %s); give one an id", id, v.lineOf(f))
			} else {
				first[id] = p
			}
		}
		v.filter(p+".filter", c.Filter)
		v.transform(p+".transform", c.Transform)
	}
}

// inProject says " in project p" for a project other than the default.
func inProject(p string) string {
	if p == "" || p == store.DefaultProject {
		return ""
	}
	return " in project " + strconv.Quote(p)
}

// known lists the declared names for an "unknown name" error.
func known(what string, names map[string]bool) string {
	if len(names) == 0 {
		return " (no " + what + " are declared in this file)"
	}
	return " (" + what + " in this file: " + strings.Join(slices.Sorted(maps.Keys(names)), ", ") + ")"
}

// ParseStorage reads a storage DSN and returns the driver to open and what
// to open it with:
//
//   - sqlite://PATH returns "sqlite" and PATH, a file path used as is:
//     sqlite://./mailroom.db gives "./mailroom.db" (relative to the
//     working directory) and sqlite:///var/lib/mailroom/mailroom.db gives
//     "/var/lib/mailroom/mailroom.db".
//   - postgres://... and postgresql://... return "postgres" and the DSN
//     unchanged, for the driver to parse.
//
// Anything else is an error; a password in the DSN is never repeated in
// it.
func ParseStorage(dsn string) (driver, target string, err error) {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		hint := ""
		if dsn != "" && !strings.ContainsAny(dsn, ":@ ") {
			hint = fmt.Sprintf(" (for a SQLite file, write sqlite://%s)", dsn)
		}
		return "", "", fmt.Errorf("unsupported storage %q: want sqlite://PATH or postgres://...%s", redactDSN(dsn), hint)
	}
	switch strings.ToLower(scheme) {
	case "sqlite":
		if rest == "" {
			return "", "", errors.New("sqlite storage needs a file path, e.g. sqlite://./mailroom.db or sqlite:///var/lib/mailroom/mailroom.db")
		}
		if strings.ContainsRune(rest, 0) {
			return "", "", errors.New("sqlite storage path contains a NUL byte")
		}
		return "sqlite", rest, nil
	case "postgres", "postgresql":
		if _, err := url.Parse(dsn); err != nil {
			return "", "", fmt.Errorf("invalid postgres DSN %q", redactDSN(dsn))
		}
		return "postgres", dsn, nil
	}
	return "", "", fmt.Errorf("unsupported storage %q: want sqlite://PATH or postgres://...", redactDSN(dsn))
}

// redactDSN hides the password of a DSN: a URL's by the one rule
// ([redact.URL]), and whatever precedes the last @ of one that does not
// parse.
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil {
		if u.User != nil {
			return redact.URL(dsn)
		}
		return dsn
	}
	if i := strings.LastIndexByte(dsn, '@'); i >= 0 {
		return redact.Mask + dsn[i:]
	}
	return dsn
}
