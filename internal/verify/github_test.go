package verify_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-github/v84/github"

	"github.com/mailroomhq/mailroom/internal/verify"
)

const githubSecret = "It's a Secret to Everybody"

var githubPush = []byte(`{"ref":"refs/heads/main","repository":{"full_name":"octo/hello"},"zen":"Keep it logically awesome."}`)

// TestGitHubMatchesGoGitHub runs each request through go-github's
// ValidatePayload and through our verifier and compares the verdicts. We
// are stricter on purpose in one way: no SHA-1 (or SHA-512) signatures.
func TestGitHubMatchesGoGitHub(t *testing.T) {
	t.Parallel()
	good := verify.SignGitHub(githubSecret, githubPush)
	sha1Sig := func() string {
		m := hmac.New(sha1.New, []byte(githubSecret))
		m.Write(githubPush)
		return "sha1=" + hex.EncodeToString(m.Sum(nil))
	}()
	sha512Sig := func() string {
		m := hmac.New(sha512.New, []byte(githubSecret))
		m.Write(githubPush)
		return "sha512=" + hex.EncodeToString(m.Sum(nil))
	}()
	tests := []struct {
		name         string
		header       http.Header
		body         []byte
		theyAccept   bool
		want         error
		stricterNote string
	}{
		{name: "valid", header: http.Header{"X-Hub-Signature-256": {good}}, body: githubPush, theyAccept: true},
		{name: "upper-case hex", header: http.Header{"X-Hub-Signature-256": {"sha256=" + strings.ToUpper(strings.TrimPrefix(good, "sha256="))}}, body: githubPush, theyAccept: true},
		{name: "both headers", header: http.Header{"X-Hub-Signature-256": {good}, "X-Hub-Signature": {sha1Sig}}, body: githubPush, theyAccept: true},
		{name: "tampered body", header: http.Header{"X-Hub-Signature-256": {good}}, body: append(bytes.Clone(githubPush), '\n'), want: verify.ErrSignatureMismatch},
		{name: "other secret", header: http.Header{"X-Hub-Signature-256": {verify.SignGitHub("nope", githubPush)}}, body: githubPush, want: verify.ErrSignatureMismatch},
		{name: "no prefix", header: http.Header{"X-Hub-Signature-256": {strings.TrimPrefix(good, "sha256=")}}, body: githubPush, want: verify.ErrMalformedSignature},
		{name: "not hex", header: http.Header{"X-Hub-Signature-256": {"sha256=xyz"}}, body: githubPush, want: verify.ErrMalformedSignature},
		{name: "truncated", header: http.Header{"X-Hub-Signature-256": {good[:len(good)-2]}}, body: githubPush, want: verify.ErrSignatureMismatch},
		{name: "no header", header: http.Header{}, body: githubPush, want: verify.ErrMissingSignature},
		{name: "sha1 header only", header: http.Header{"X-Hub-Signature": {sha1Sig}}, body: githubPush, theyAccept: true, want: verify.ErrMissingSignature, stricterNote: "SHA-1 is refused"},
		{name: "sha1 in sha256 header", header: http.Header{"X-Hub-Signature-256": {sha1Sig}}, body: githubPush, theyAccept: true, want: verify.ErrMalformedSignature, stricterNote: "SHA-1 is refused"},
		{name: "sha512 in sha256 header", header: http.Header{"X-Hub-Signature-256": {sha512Sig}}, body: githubPush, theyAccept: true, want: verify.ErrMalformedSignature, stricterNote: "only sha256= is GitHub's"},
	}
	v := mustNew(t, verify.Config{Type: "github", Secret: githubSecret})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodPost, "/e/github", bytes.NewReader(tt.body))
			r.Header = tt.header.Clone()
			r.Header.Set("Content-Type", "application/json")
			_, theirs := github.ValidatePayload(r, []byte(githubSecret))
			if (theirs == nil) != tt.theyAccept {
				t.Fatalf("go-github ValidatePayload = %v, want accept=%v", theirs, tt.theyAccept)
			}
			ours := v.Verify(&verify.Request{Header: tt.header, Body: tt.body})
			checkErr(t, ours, tt.want)
			if (ours == nil) != (theirs == nil) && tt.stricterNote == "" {
				t.Fatalf("verdicts differ: go-github %v, ours %v", theirs, ours)
			}
		})
	}
}

func TestSignGitHubAcceptedByGoGitHub(t *testing.T) {
	t.Parallel()
	for _, body := range [][]byte{githubPush, {}, []byte("payload=%7B%7D")} {
		sig := verify.SignGitHub(githubSecret, body)
		if err := github.ValidateSignature(sig, body, []byte(githubSecret)); err != nil {
			t.Errorf("go-github ValidateSignature(%q): %v", body, err)
		}
		if err := github.ValidateSignature(sig, body, []byte("other")); err == nil {
			t.Errorf("go-github accepted %q under another secret", body)
		}
	}
}

func TestGitHubRotation(t *testing.T) {
	t.Parallel()
	v := mustNew(t, verify.Config{Type: "github", Secrets: []string{"old", githubSecret}})
	for _, secret := range []string{"old", githubSecret} {
		h := http.Header{"X-Hub-Signature-256": {verify.SignGitHub(secret, githubPush)}}
		checkErr(t, v.Verify(&verify.Request{Header: h, Body: githubPush}), nil)
	}
	h := http.Header{"X-Hub-Signature-256": {verify.SignGitHub("older", githubPush)}}
	checkErr(t, v.Verify(&verify.Request{Header: h, Body: githubPush}), verify.ErrSignatureMismatch)
}
