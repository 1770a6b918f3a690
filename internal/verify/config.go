package verify

import "github.com/mailroomhq/mailroom/internal/duration"

// Config says how a source proves that a request is genuine: the verify
// block of a source (`verify: {type: slack, secret: ...}`). Type is a
// provider or scheme name from [Providers]; which other fields it needs is
// listed in that provider's row ([Provider.Fields]).
type Config struct {
	// Type names the provider or scheme. Empty means "none".
	Type string `yaml:"type" json:"type"`
	// Secret is the signing secret (or token, for the schemes that compare
	// a static token). Secrets lists more for rotation; a request passes
	// when any of them verifies it.
	Secret  string   `yaml:"secret,omitempty" json:"secret,omitempty"`
	Secrets []string `yaml:"secrets,omitempty" json:"secrets,omitempty"`
	// Tolerance bounds the age (and future skew) of a signed timestamp for
	// the schemes that sign one. Zero means [DefaultTolerance].
	Tolerance duration.Duration `yaml:"tolerance,omitempty" json:"tolerance,omitempty"`
	// Header names the header that carries the signature (hmac) or the key
	// (api-key).
	Header string `yaml:"header,omitempty" json:"header,omitempty"`
	// Algorithm is sha256 (default) or sha512, for hmac.
	Algorithm string `yaml:"algorithm,omitempty" json:"algorithm,omitempty"`
	// Encoding is hex (default) or base64, for hmac.
	Encoding string `yaml:"encoding,omitempty" json:"encoding,omitempty"`
	// Prefix is stripped from the header value before decoding, for hmac
	// (e.g. "sha256=").
	Prefix string `yaml:"prefix,omitempty" json:"prefix,omitempty"`
	// Username and Password are the credentials for basic (and Postmark).
	Username string `yaml:"username,omitempty" json:"username,omitempty"`
	Password string `yaml:"password,omitempty" json:"password,omitempty"`
	// PublicKey is the provider's public key, for the schemes signed with
	// a private key: Discord (Ed25519, hex) and SendGrid (ECDSA P-256,
	// base64 DER as the SendGrid console shows it).
	PublicKey string `yaml:"public_key,omitempty" json:"public_key,omitempty"`
	// URL is the externally visible URL of the source, exactly as the
	// provider calls it, for the schemes that sign the URL (Twilio, Square,
	// HubSpot). Empty means the URL is rebuilt from the request (its Host,
	// and https unless the request came over plain HTTP without an
	// X-Forwarded-Proto: https), which is wrong behind a proxy that
	// rewrites the host or path.
	URL string `yaml:"url,omitempty" json:"url,omitempty"`
	// TopicARNs are the Amazon SNS topics an aws-sns source accepts; a
	// message of any other topic is refused, even when AWS signed it.
	TopicARNs []string `yaml:"topic_arns,omitempty" json:"topic_arns,omitempty"`
	// VerifyToken is the token the provider sends back in its subscription
	// check (Meta's hub.verify_token). Empty means the check is refused.
	VerifyToken string `yaml:"verify_token,omitempty" json:"verify_token,omitempty"`
}

// AllSecrets returns Secret followed by Secrets, without empty entries.
func (c Config) AllSecrets() []string {
	var out []string
	if c.Secret != "" {
		out = append(out, c.Secret)
	}
	for _, s := range c.Secrets {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
