package verify

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"
)

// DefaultAPIKeyHeader carries the key of an api-key source that names no
// header.
const DefaultAPIKeyHeader = "X-API-Key"

// bodyMAC returns the HMAC of body under key.
func bodyMAC(h func() hash.Hash, key, body []byte) []byte {
	m := hmac.New(h, key)
	m.Write(body)
	return m.Sum(nil)
}

// HMAC verifies a generic body signature: a header holding the HMAC of the
// body (SHA-256 or SHA-512, keyed with the secret as is), hex or base64
// encoded, optionally after a fixed prefix such as "sha256=". Hex is
// accepted in either case, and the prefix is matched without regard to
// case. Build one with [New].
type HMAC struct {
	header   string
	hash     func() hash.Hash
	base64   bool
	prefix   string
	secrets  [][]byte
	hashName string
}

func newHMAC(cfg Config) (*HMAC, error) {
	if cfg.Header == "" {
		return nil, configErr("header", "required for type %q", cfg.Type)
	}
	secrets, err := requireSecrets(cfg)
	if err != nil {
		return nil, err
	}
	v := &HMAC{header: cfg.Header, prefix: cfg.Prefix, secrets: secrets}
	switch strings.ToLower(cfg.Algorithm) {
	case "", "sha256":
		v.hash, v.hashName = sha256.New, "sha256"
	case "sha512":
		v.hash, v.hashName = sha512.New, "sha512"
	default:
		return nil, configErr("algorithm", "%q is not supported (want sha256 or sha512)", cfg.Algorithm)
	}
	switch strings.ToLower(cfg.Encoding) {
	case "", "hex":
	case "base64":
		v.base64 = true
	default:
		return nil, configErr("encoding", "%q is not supported (want hex or base64)", cfg.Encoding)
	}
	return v, nil
}

// Verify checks r's signature header.
func (v *HMAC) Verify(r *Request) error {
	h := r.Header.Get(v.header)
	if h == "" {
		return fmt.Errorf("%w: no %s header", ErrMissingSignature, v.header)
	}
	if v.prefix != "" {
		if len(h) < len(v.prefix) || !strings.EqualFold(h[:len(v.prefix)], v.prefix) {
			return fmt.Errorf("%w: %s does not start with %q", ErrMalformedSignature, v.header, v.prefix)
		}
		h = h[len(v.prefix):]
	}
	sig, err := v.decode(h)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrMalformedSignature, v.header, err)
	}
	for _, key := range v.secrets {
		if hmac.Equal(bodyMAC(v.hash, key, r.Body), sig) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s (hmac-%s) matches no secret", ErrSignatureMismatch, v.header, v.hashName)
}

func (v *HMAC) decode(s string) ([]byte, error) {
	if !v.base64 {
		b, err := hex.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("not hex")
		}
		return b, nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(s); err != nil {
			return nil, fmt.Errorf("not base64")
		}
	}
	return b, nil
}

// SignHMAC returns the header value the generic hmac scheme of cfg expects
// for body, signed with cfg's first secret: the prefix, then the encoded
// MAC. It fails on the same config errors as [New].
func SignHMAC(cfg Config, body []byte) (string, error) {
	v, err := newHMAC(cfg)
	if err != nil {
		return "", err
	}
	return v.sign(body), nil
}

// sign returns the header value for body signed with v's first secret.
func (v *HMAC) sign(body []byte) string {
	mac := bodyMAC(v.hash, v.secrets[0], body)
	if v.base64 {
		return v.prefix + base64.StdEncoding.EncodeToString(mac)
	}
	return v.prefix + hex.EncodeToString(mac)
}

// Basic verifies HTTP Basic authentication against one username and
// password. Build one with [New].
type Basic struct {
	username, password string
}

func newBasic(cfg Config) (*Basic, error) {
	if cfg.Username == "" {
		return nil, configErr("username", "required for type %q", cfg.Type)
	}
	if strings.Contains(cfg.Username, ":") {
		return nil, configErr("username", "must not contain a colon (RFC 7617)")
	}
	if cfg.Password == "" {
		return nil, configErr("password", "required for type %q", cfg.Type)
	}
	return &Basic{username: cfg.Username, password: cfg.Password}, nil
}

// Verify checks r's Authorization header.
func (b *Basic) Verify(r *Request) error {
	h := r.Header.Get("Authorization")
	if h == "" {
		return fmt.Errorf("%w: no Authorization header", ErrMissingSignature)
	}
	user, pass, ok := parseBasicAuth(h)
	if !ok {
		return fmt.Errorf("%w: Authorization is not Basic credentials", ErrMalformedSignature)
	}
	// Check both, always, so timing does not tell which was wrong.
	userOK := equalSecret(user, b.username)
	passOK := equalSecret(pass, b.password)
	if !userOK || !passOK || b.username == "" { // a zero Basic accepts no one
		return fmt.Errorf("%w: wrong username or password", ErrBadCredentials)
	}
	return nil
}

// parseBasicAuth reads "Basic <base64(user:pass)>" as net/http does.
func parseBasicAuth(h string) (user, pass string, ok bool) {
	const prefix = "Basic "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(h[len(prefix):])
	if err != nil {
		return "", "", false
	}
	return strings.Cut(string(raw), ":")
}

// APIKey verifies a static key sent in a header (X-API-Key unless the
// config names another). Any of the configured secrets is accepted. Build
// one with [New].
type APIKey struct {
	header string
	keys   []string
}

func newAPIKey(cfg Config) (*APIKey, error) {
	keys := cfg.AllSecrets()
	if len(keys) == 0 {
		return nil, configErr("secret", "required for type %q", cfg.Type)
	}
	header := cfg.Header
	if header == "" {
		header = DefaultAPIKeyHeader
	}
	return &APIKey{header: header, keys: keys}, nil
}

// Verify checks r's key header.
func (a *APIKey) Verify(r *Request) error {
	got := r.Header.Get(a.header)
	if got == "" {
		return fmt.Errorf("%w: no %s header", ErrMissingSignature, a.header)
	}
	if !anySecret(got, a.keys) {
		return fmt.Errorf("%w: %s matches no key", ErrBadCredentials, a.header)
	}
	return nil
}

// basicAuthHeader returns the Authorization value for user and pass.
func basicAuthHeader(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func hmacProvider() *Provider {
	return &Provider{
		Name: TypeHMAC, Title: "Generic HMAC", Generic: true,
		Scheme: "<header>: <prefix><hex or base64 HMAC-SHA256/512 of the body>",
		Fields: []string{"header*", "secret*", "algorithm", "encoding", "prefix"},
		build:  func(c Config, _ *Options) (Verifier, error) { return newHMAC(c) },
		sign: func(c Config, m *Message) error {
			sig, err := SignHMAC(c, m.Body)
			if err != nil {
				return err
			}
			m.Header.Set(c.Header, sig)
			return nil
		},
		sample: func(secret string) Config {
			return Config{Type: TypeHMAC, Secret: secret, Header: "X-Signature", Algorithm: "sha256", Encoding: "hex"}
		},
	}
}

func basicProvider() *Provider {
	return &Provider{
		Name: TypeBasic, Title: "HTTP Basic", Generic: true, Unsigned: true,
		Scheme: "Authorization: Basic <base64 username:password>",
		Fields: []string{"username*", "password*"},
		build:  func(c Config, _ *Options) (Verifier, error) { return newBasic(c) },
		sign: func(c Config, m *Message) error {
			m.Header.Set("Authorization", basicAuthHeader(c.Username, c.Password))
			return nil
		},
		sample: func(secret string) Config { return Config{Type: TypeBasic, Username: "mailroom", Password: secret} },
	}
}

func apiKeyProvider() *Provider {
	return &Provider{
		Name: TypeAPIKey, Title: "API key", Generic: true, Unsigned: true,
		Scheme: "<header> (X-API-Key by default): one of the secrets",
		Fields: []string{"secret*", "header"},
		build:  func(c Config, _ *Options) (Verifier, error) { return newAPIKey(c) },
		sign: func(c Config, m *Message) error {
			m.Header.Set(cmp.Or(c.Header, DefaultAPIKeyHeader), firstSecret(c))
			return nil
		},
	}
}

func noneProvider() *Provider {
	return &Provider{
		Name: TypeNone, Title: "None", Generic: true, Unsigned: true,
		Scheme: "no verification: every request is accepted",
		build:  func(Config, *Options) (Verifier, error) { return None{}, nil },
		sign:   func(Config, *Message) error { return nil },
	}
}
