package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// SessionCookie is the name of the dashboard's session cookie.
const SessionCookie = "mailroom_session"

// maxFormBytes caps the body of a form post.
const maxFormBytes = 64 << 10

// session is a verified session cookie: its random id and expiry.
type session struct {
	id      string
	expires time.Time
}

type sessionKey struct{}

func withSession(ctx context.Context, s session) context.Context {
	return context.WithValue(ctx, sessionKey{}, s)
}

func sessionFrom(ctx context.Context) session {
	s, _ := ctx.Value(sessionKey{}).(session)
	return s
}

// mac returns the HMAC-SHA256 of the parts under the server's key, with a
// separator that cannot occur in them.
func (w *Server) mac(parts ...string) []byte {
	m := hmac.New(sha256.New, w.key)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

// cookieValue encodes s as "<expiry>.<id>.<mac>".
func (w *Server) cookieValue(s session) string {
	exp := strconv.FormatInt(s.expires.Unix(), 10)
	sig := base64.RawURLEncoding.EncodeToString(w.mac("session", exp, s.id))
	return exp + "." + s.id + "." + sig
}

// session returns the request's session if its cookie is present, signed
// by this server and not expired.
func (w *Server) session(r *http.Request) (session, bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return session{}, false
	}
	exp, id, ok := strings.Cut(c.Value, ".")
	if !ok {
		return session{}, false
	}
	id, sig, ok := strings.Cut(id, ".")
	if !ok {
		return session{}, false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, w.mac("session", exp, id)) {
		return session{}, false
	}
	secs, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return session{}, false
	}
	s := session{id: id, expires: time.Unix(secs, 0)}
	if !w.now().Before(s.expires) {
		return session{}, false
	}
	return s, true
}

// newSession starts a session and sets its cookie on rw.
func (w *Server) newSession(rw http.ResponseWriter, r *http.Request) session {
	b := make([]byte, 18)
	rand.Read(b) // never fails; see crypto/rand.Read
	s := session{id: base64.RawURLEncoding.EncodeToString(b), expires: w.now().Add(w.ttl)}
	http.SetCookie(rw, &http.Cookie{
		Name: SessionCookie, Value: w.cookieValue(s), Path: "/",
		Expires: s.expires, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
	return s
}

// csrfToken is the token every form of session s carries.
func (w *Server) csrfToken(s session) string {
	return base64.RawURLEncoding.EncodeToString(w.mac("csrf", s.id))
}

// validCSRF reports, in constant time, whether token is s's CSRF token.
func (w *Server) validCSRF(s session, token string) bool {
	want := w.csrfToken(s)
	return subtle.ConstantTimeCompare([]byte(token), []byte(want)) == 1
}

// tokenMatches reports whether a submitted API token is the configured one.
func (w *Server) tokenMatches(token string) bool {
	_, ok := w.tokens.Match(token)
	return ok
}

// safeNext returns next if it is a path on this site, else "/", so that the
// login form cannot be used to redirect elsewhere. next is parsed, and the
// answer rebuilt from its path, query and fragment, only when it has no
// scheme, no host and a path-absolute path ("/x", not "//x"). Control
// characters and backslashes refuse it outright: browsers drop tabs and
// newlines from a Location and read "\" as "/", so "/\t/evil.example" and
// "/\evil.example" would leave the site.
func safeNext(next string) string {
	if strings.ContainsFunc(next, func(c rune) bool { return c < 0x20 || c == 0x7f || c == '\\' }) {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "/"
	}
	p := u.EscapedPath()
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") {
		return "/"
	}
	if u.RawQuery != "" {
		p += "?" + u.RawQuery
	}
	if u.Fragment != "" {
		p += "#" + u.EscapedFragment()
	}
	return p
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

type loginData struct {
	Next  string
	Error string
}

func (w *Server) loginPage(rw http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if w.tokens.Empty() {
		http.Redirect(rw, r, next, http.StatusSeeOther)
		return
	}
	if _, ok := w.session(r); ok {
		http.Redirect(rw, r, next, http.StatusSeeOther)
		return
	}
	w.render(rw, r, http.StatusOK, "login", "Log in", &loginData{Next: next})
}

// login exchanges the API token for a session cookie. The shared
// cross-site check in front of the dashboard (internal/httpguard) has
// already refused cross-site posts, which is what stops login CSRF here
// (there is no session yet to hold a CSRF token).
func (w *Server) login(rw http.ResponseWriter, r *http.Request) {
	next := safeNext(r.PostFormValue("next"))
	if w.tokens.Empty() {
		http.Redirect(rw, r, next, http.StatusSeeOther)
		return
	}
	if !w.tokenMatches(r.PostFormValue("token")) {
		w.log.Warn("web: login with a wrong token", "remote", r.RemoteAddr)
		w.render(rw, r, http.StatusUnauthorized, "login", "Log in", &loginData{Next: next, Error: "That is not the API token."})
		return
	}
	w.newSession(rw, r)
	http.Redirect(rw, r, next, http.StatusSeeOther)
}

// logout clears the session cookie. Sessions are stateless, so a copied
// cookie stays valid until it expires or the process restarts.
func (w *Server) logout(rw http.ResponseWriter, r *http.Request) {
	http.SetCookie(rw, &http.Cookie{
		Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
	target := "/ui/login"
	if w.tokens.Empty() {
		target = "/"
	}
	http.Redirect(rw, r, target, http.StatusSeeOther)
}
