package verify

import (
	"encoding/json"
	"fmt"
)

// tokenRow fills p as a provider whose header carries the secret.
func tokenRow(p *Provider, header string) *Provider {
	p.Fields = []string{"secret*"}
	p.CredentialHeader = header
	p.Unsigned = true
	// Not among the forwarded Headers: it is stored masked, so a forward
	// could only carry the mask.
	p.build = func(c Config, _ *Options) (Verifier, error) {
		keys := c.AllSecrets()
		if len(keys) == 0 {
			return nil, configErr("secret", "required for type %q", c.Type)
		}
		return &APIKey{header: header, keys: keys}, nil // a key in a fixed header
	}
	p.sign = func(c Config, m *Message) error {
		m.Header.Set(header, firstSecret(c))
		return nil
	}
	return p
}

// tokenProviders are the providers that authenticate with a shared token
// or credentials rather than a signature of the body.
func tokenProviders() []*Provider {
	return []*Provider{
		tokenRow(&Provider{
			Name: "gitlab", Title: "GitLab",
			Scheme:      "X-Gitlab-Token: the secret token, as is (no signature of the body)",
			IDHeader:    "X-Gitlab-Event-UUID",
			EventHeader: "X-Gitlab-Event",
			DedupKey:    `"idempotency-key" in headers ? headers["idempotency-key"] : headers["x-gitlab-event-uuid"]`,
			EventType:   `headers["x-gitlab-event"]`,
			Headers:     []string{"X-Gitlab-Event", "X-Gitlab-Event-UUID", "Idempotency-Key", "X-Gitlab-Instance"},
		}, "X-Gitlab-Token"),
		tokenRow(&Provider{
			Name: "telegram", Title: "Telegram Bot API",
			Scheme:    "X-Telegram-Bot-Api-Secret-Token: the setWebhook secret_token, as is",
			DedupKey:  `body.update_id`,
			EventType: `body.filter(k, k != "update_id")[0]`,
		}, "X-Telegram-Bot-Api-Secret-Token"),
		basicProvider().with(func(p *Provider) {
			p.Name, p.Title, p.Generic = "postmark", "Postmark", false
			p.Scheme = "HTTP Basic credentials set in the webhook URL (Postmark does not sign webhooks)"
			p.DedupKey = `body.RecordType + ":" + (has(body.ID) ? string(int(body.ID)) : body.MessageID)`
			p.EventType = `body.RecordType`
			p.sample = func(secret string) Config { return Config{Type: "postmark", Username: "postmark", Password: secret} }
		}),
		{
			Name: "microsoft-graph", Title: "Microsoft Graph change notifications",
			Scheme:    "clientState of every notification in the body equal to the secret; POST ?validationToken= answered",
			Fields:    []string{"secret*"},
			EventType: `size(body.value) > 0 ? body.value[0].changeType : ""`,
			Handshake: "POST `?validationToken=`: echoes the token (text/plain)",
			Unsigned:  true,
			build: func(c Config, _ *Options) (Verifier, error) {
				keys := c.AllSecrets()
				if len(keys) == 0 {
					return nil, configErr("secret", "required for type %q", c.Type)
				}
				return &graphVerifier{states: keys}, nil
			},
			sign: func(c Config, m *Message) error {
				var n graphNotifications
				if err := json.Unmarshal(m.Body, &n); err != nil {
					return fmt.Errorf("sign as microsoft-graph: body is not a notification collection: %w", err)
				}
				for i := range n.Value {
					n.Value[i]["clientState"] = firstSecret(c)
				}
				b, err := json.Marshal(n)
				if err != nil {
					return err
				}
				m.Body = b
				return nil
			},
			SignRewritesBody: true,
		},
	}
}

// graphNotifications is the body of a Microsoft Graph change notification.
type graphNotifications struct {
	Value []map[string]any `json:"value"`
}

// graphVerifier checks Microsoft Graph change notifications: each holds a
// clientState that must equal a configured secret. It answers the
// subscription's validationToken check.
type graphVerifier struct{ states []string }

// Verify checks the clientState of every notification in r's body.
func (g *graphVerifier) Verify(r *Request) error {
	var n graphNotifications
	if err := json.Unmarshal(r.Body, &n); err != nil || len(n.Value) == 0 {
		return fmt.Errorf("%w: body is not a change notification collection", ErrMissingSignature)
	}
	for i, v := range n.Value {
		state, _ := v["clientState"].(string)
		if state == "" {
			return fmt.Errorf("%w: notification %d has no clientState", ErrMissingSignature, i)
		}
		if !anySecret(state, g.states) {
			return fmt.Errorf("%w: clientState of notification %d matches no secret", ErrBadCredentials, i)
		}
	}
	return nil
}

// Handshake answers Graph's POST ?validationToken=: the token, as plain
// text, within Graph's 10 seconds.
func (g *graphVerifier) Handshake(r *Request) (*Handshake, error) {
	if !r.Query.Has("validationToken") {
		return nil, nil
	}
	return textAnswer(r.Query.Get("validationToken"), "microsoft graph validationToken answered"), nil
}

var _ Handshaker = (*graphVerifier)(nil)
