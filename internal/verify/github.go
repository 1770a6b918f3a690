package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// GitHubHeader carries GitHub's SHA-256 signature.
const GitHubHeader = "X-Hub-Signature-256"

// GitHub verifies GitHub's X-Hub-Signature-256 header, "sha256=<hex>": an
// HMAC-SHA256 of the body keyed with the webhook secret. The legacy SHA-1
// X-Hub-Signature header is not accepted. Build one with [New].
type GitHub struct {
	secrets [][]byte
}

// Verify checks r's X-Hub-Signature-256 header.
func (g *GitHub) Verify(r *Request) error {
	h := r.Header.Get(GitHubHeader)
	if h == "" {
		if r.Header.Get("X-Hub-Signature") != "" {
			return fmt.Errorf("%w: no %s header (the SHA-1 X-Hub-Signature is not accepted)", ErrMissingSignature, GitHubHeader)
		}
		return fmt.Errorf("%w: no %s header", ErrMissingSignature, GitHubHeader)
	}
	hexSig, ok := strings.CutPrefix(h, "sha256=")
	if !ok {
		return fmt.Errorf("%w: %s does not start with sha256=", ErrMalformedSignature, GitHubHeader)
	}
	sig, err := hex.DecodeString(hexSig)
	if err != nil {
		return fmt.Errorf("%w: %s is not hex", ErrMalformedSignature, GitHubHeader)
	}
	for _, key := range g.secrets {
		if hmac.Equal(bodyMAC(sha256.New, key, r.Body), sig) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s matches no secret", ErrSignatureMismatch, GitHubHeader)
}

// SignGitHub returns an X-Hub-Signature-256 header value for body signed
// with secret: "sha256=<hex>".
func SignGitHub(secret string, body []byte) string {
	return "sha256=" + hex.EncodeToString(bodyMAC(sha256.New, []byte(secret), body))
}

func githubProvider() *Provider {
	return &Provider{
		Name: TypeGitHub, Title: "GitHub",
		Scheme:      "X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>",
		Fields:      []string{"secret*"},
		IDHeader:    "X-GitHub-Delivery",
		EventHeader: "X-GitHub-Event",
		DedupKey:    `headers["x-github-delivery"]`,
		EventType:   `headers["x-github-event"]`,
		Headers:     []string{GitHubHeader, "X-GitHub-Delivery", "X-GitHub-Event"},
		build: func(c Config, _ *Options) (Verifier, error) {
			secrets, err := requireSecrets(c)
			if err != nil {
				return nil, err
			}
			return &GitHub{secrets: secrets}, nil
		},
		sign: func(c Config, m *Message) error {
			m.Header.Set(GitHubHeader, SignGitHub(firstSecret(c), m.Body))
			return nil
		},
	}
}
