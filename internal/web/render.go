package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mailroomhq/mailroom/internal/access"
)

// isPartial reports whether name is a block a page may be asked for alone
// with ?partial=NAME, which the script uses to refresh part of a page.
func isPartial(name string) bool { return name == "rows" || name == "deliveries" }

// parsePages parses every page's template set: the page's file with
// layout.html and partials.html. A parse error is a programmer error in
// the embedded files, so it panics.
func parsePages(funcs template.FuncMap) map[string]*template.Template {
	names := []string{"login", "error", "overview", "requests", "request", "events", "event", "destinations", "sources", "tasks"}
	base := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html"))
	out := make(map[string]*template.Template, len(names))
	for _, name := range names {
		out[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name+".html"))
	}
	return out
}

// page is what every template receives.
type page struct {
	Title string
	// Nav is the page's name, to mark the current link.
	Nav string
	// CSRF is the session's token for the hidden field of every form.
	CSRF string
	// Auth is true when the dashboard requires a login (so it shows
	// Log out).
	Auth bool
	// Who is whom the session acts for.
	Who    access.Principal
	Flash  string
	Assets map[string]string
	Now    time.Time
	Data   any
}

// Can reports whether the session's principal may use the route
// registered with pattern ("POST /ui/deliveries/{id}/retry"), by the
// permission table the server enforces: a page shows only the actions
// its viewer may take.
func (p *page) Can(pattern string) bool { return p.Who.Authorize(pattern) == nil }

// render writes the named page with data, or only the partial the query
// asks for.
func (w *Server) render(rw http.ResponseWriter, r *http.Request, status int, name, title string, data any) {
	t := w.pages[name]
	who, _ := access.From(r.Context())
	p := &page{
		Title: title, Nav: name, Auth: who.TokenID != "", Who: who, Assets: w.assets, Now: w.now(), Data: data,
		Flash: flashMessage(r.URL.Query()),
	}
	if s := sessionFrom(r.Context()); s.id != "" {
		p.CSRF = w.csrfToken(s)
	}
	tmpl := "layout.html"
	if part := r.URL.Query().Get("partial"); isPartial(part) && t.Lookup(part) != nil {
		tmpl = part
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, tmpl, p); err != nil {
		w.log.Error("web: render page", "page", name, "err", err)
		http.Error(rw, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	rw.WriteHeader(status)
	rw.Write(buf.Bytes())
}

type errorData struct {
	Status  int
	Message string
}

// renderError writes an error page with status and msg.
func (w *Server) renderError(rw http.ResponseWriter, r *http.Request, status int, msg string) {
	w.render(rw, r, status, "error", http.StatusText(status), &errorData{Status: status, Message: msg})
}

// storageError logs err and answers 503, since it is storage failing
// rather than the operator.
func (w *Server) storageError(rw http.ResponseWriter, r *http.Request, err error) {
	w.log.Error("web: storage error", "method", r.Method, "path", r.URL.Path, "err", err)
	rw.Header().Set("Retry-After", "1")
	w.renderError(rw, r, http.StatusServiceUnavailable, "Storage is unavailable; retry in a moment.")
}

// flashMessage turns the flash code an action redirected with into its
// message. Only known codes are shown, so a link cannot put arbitrary text
// on the page.
func flashMessage(q url.Values) string {
	switch q.Get("flash") {
	case "retried":
		return "Delivery queued for another attempt."
	case "replayed":
		n, _ := strconv.Atoi(q.Get("n"))
		if n == 0 {
			return "Event replayed: no connection matches it now, so nothing was queued."
		}
		return fmt.Sprintf("Event replayed: %d new deliver%s queued.", n, plural(n, "y", "ies"))
	case "paused":
		return "Destination paused: its deliveries wait until it is resumed."
	case "resumed":
		return "Destination resumed."
	}
	return ""
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func (w *Server) funcs() template.FuncMap {
	return template.FuncMap{
		"asset": func(name string) string { return w.assets[name] },
		"time": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2006-01-02 15:04:05Z")
		},
		"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
		"ago": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return humanDuration(w.now().Sub(t))
		},
		"dur":       humanDuration,
		"ms":        func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) + " ms" },
		"pct":       func(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + "%" },
		"rate":      func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
		"body":      prettyBody,
		"viewBody":  viewBody,
		"join":      strings.Join,
		"hasPrefix": strings.HasPrefix,
		"httpOK":    func(code int) bool { return code >= 200 && code < 300 },
		"plural":    plural,
		"add":       func(a, b int) int { return a + b },
		"barPct":    barPct,
		"default":   func(def, s string) string { return cmpOr(s, def) },
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// barPct is the height class of a bar of value n in a chart whose largest
// bar is max: 0 to 20, in steps of 5%, and at least 1 for any n > 0. (A
// class rather than a style attribute, which the CSP forbids.)
func barPct(n, max int) int {
	if max <= 0 || n <= 0 {
		return 0
	}
	return (n*20 + max - 1) / max
}

// humanDuration writes d short and rounded: 45s, 12m, 3h5m, 2d4h.
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
}

// maxBodyShown caps the bytes of a body rendered on a page.
const maxBodyShown = 256 << 10

// prettyBody renders b for a <pre>: indented when it is JSON, as text when
// it is UTF-8, else as a note and hex of the first bytes. Bodies larger
// than [maxBodyShown] are cut.
func prettyBody(b []byte) string {
	if len(b) == 0 {
		return "(empty)"
	}
	cut := ""
	if len(b) > maxBodyShown {
		cut = fmt.Sprintf("\n… %d more bytes not shown", len(b)-maxBodyShown)
		b = b[:maxBodyShown]
	}
	if cut == "" && json.Valid(b) {
		var buf bytes.Buffer
		if json.Indent(&buf, b, "", "  ") == nil {
			return buf.String()
		}
	}
	if utf8.Valid(b) {
		return string(b) + cut
	}
	n := min(len(b), 512)
	return fmt.Sprintf("(binary, %d bytes; first %d in hex)\n%x", len(b), n, b[:n]) + cut
}
