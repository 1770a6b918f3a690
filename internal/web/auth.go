package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mailroomhq/mailroom/internal/auth"
)

// SessionCookie is the name of the dashboard's session cookie.
const SessionCookie = "mailroom_session"

// maxFormBytes caps the body of a form post.
const maxFormBytes = 64 << 10

// session is a verified session cookie: its random id, expiry and the id
// of the token it logged in with ("" for open mode's anonymous session).
type session struct {
	id      string
	expires time.Time
	tokenID string
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

// cookieValue encodes s as "<expiry>.<id>.<token id>.<mac>", the token
// id in base64url.
func (w *Server) cookieValue(s session) string {
	exp := strconv.FormatInt(s.expires.Unix(), 10)
	tok := base64.RawURLEncoding.EncodeToString([]byte(s.tokenID))
	sig := base64.RawURLEncoding.EncodeToString(w.mac("session", exp, s.id, tok))
	return exp + "." + s.id + "." + tok + "." + sig
}

// session returns the request's session if its cookie is present, signed
// by this server and not expired.
func (w *Server) session(r *http.Request) (session, bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return session{}, false
	}
	parts := strings.Split(c.Value, ".")
	if len(parts) != 4 {
		return session{}, false
	}
	exp, id, tok, sig := parts[0], parts[1], parts[2], parts[3]
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, w.mac("session", exp, id, tok)) {
		return session{}, false
	}
	secs, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return session{}, false
	}
	tokenID, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return session{}, false
	}
	s := session{id: id, expires: time.Unix(secs, 0), tokenID: string(tokenID)}
	if !w.now().Before(s.expires) {
		return session{}, false
	}
	return s, true
}

// newSession starts a session of the token tokenID and sets its cookie on
// rw.
func (w *Server) newSession(rw http.ResponseWriter, r *http.Request, tokenID string) session {
	b := make([]byte, 18)
	rand.Read(b) // never fails; see crypto/rand.Read
	s := session{id: base64.RawURLEncoding.EncodeToString(b), expires: w.now().Add(w.ttl), tokenID: tokenID}
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
	open, err := w.auth.Open(r.Context())
	if err != nil {
		w.storageError(rw, r, err)
		return
	}
	if open {
		http.Redirect(rw, r, next, http.StatusSeeOther)
		return
	}
	if s, ok := w.session(r); ok && s.tokenID != "" {
		http.Redirect(rw, r, next, http.StatusSeeOther)
		return
	}
	w.render(rw, r, http.StatusOK, "login", "Log in", &loginData{Next: next})
}

// login exchanges a token (api.token or a stored one) for a session
// cookie that remembers the token's id: each request then acts for that
// token's principal, checked again on every request, so that a revoked
// or expired token ends its sessions. The shared
// cross-site check in front of the dashboard (internal/httpguard) has
// already refused cross-site posts, which is what stops login CSRF here
// (there is no session yet to hold a CSRF token).
func (w *Server) login(rw http.ResponseWriter, r *http.Request) {
	next := safeNext(r.PostFormValue("next"))
	open, err := w.auth.Open(r.Context())
	if err != nil {
		w.storageError(rw, r, err)
		return
	}
	if open {
		http.Redirect(rw, r, next, http.StatusSeeOther)
		return
	}
	p, err := w.auth.Token(r.Context(), r.PostFormValue("token"))
	if errors.Is(err, auth.ErrUnauthenticated) {
		w.log.Warn("web: login with a wrong token", "remote", r.RemoteAddr)
		w.render(rw, r, http.StatusUnauthorized, "login", "Log in", &loginData{Next: next, Error: "That is not a valid token."})
		return
	}
	if err != nil {
		w.storageError(rw, r, err)
		return
	}
	w.newSession(rw, r, p.TokenID)
	http.Redirect(rw, r, next, http.StatusSeeOther)
}

// logout clears the session cookie. Sessions are stateless, so a copied
// cookie stays valid until it expires, the process restarts or its token
// is revoked.
func (w *Server) logout(rw http.ResponseWriter, r *http.Request) {
	http.SetCookie(rw, &http.Cookie{
		Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(rw, r, "/ui/login", http.StatusSeeOther)
}
