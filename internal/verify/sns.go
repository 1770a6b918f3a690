package verify

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
)

// snsHost matches the hosts AWS SNS serves signing certificates and
// subscription confirmations from: sns.<region>.amazonaws.com (.com.cn in
// China).
var snsHost = regexp.MustCompile(`^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$`)

// snsCertPath matches the path of an SNS signing certificate, so that a
// forged message cannot make mailroom fetch other paths of an AWS host.
var snsCertPath = regexp.MustCompile(`^/SimpleNotificationService-[A-Za-z0-9]+\.pem$`)

// SNSCertHost reports whether a SigningCertURL or SubscribeURL may be
// fetched by default: https, on an SNS host of AWS. Anything else is never
// fetched, so a forged message cannot make mailroom call an address of the
// sender's choosing.
func SNSCertHost(scheme, host string) bool {
	return scheme == "https" && snsHost.MatchString(host)
}

// snsMessage is the JSON body of an SNS HTTP(S) delivery.
type snsMessage struct {
	Type             string
	MessageID        string `json:"MessageId"`
	Token            string
	TopicArn         string
	Subject          *string
	Message          string
	Timestamp        string
	SignatureVersion string
	Signature        string
	SigningCertURL   string
	SubscribeURL     string
}

// stringToSign is the text SNS signs for m's type.
func (m *snsMessage) stringToSign() (string, error) {
	var b strings.Builder
	add := func(k, v string) { b.WriteString(k + "\n" + v + "\n") }
	switch m.Type {
	case "Notification":
		add("Message", m.Message)
		add("MessageId", m.MessageID)
		if m.Subject != nil {
			add("Subject", *m.Subject)
		}
		add("Timestamp", m.Timestamp)
		add("TopicArn", m.TopicArn)
		add("Type", m.Type)
	case "SubscriptionConfirmation", "UnsubscribeConfirmation":
		add("Message", m.Message)
		add("MessageId", m.MessageID)
		add("SubscribeURL", m.SubscribeURL)
		add("Timestamp", m.Timestamp)
		add("Token", m.Token)
		add("TopicArn", m.TopicArn)
		add("Type", m.Type)
	default:
		return "", fmt.Errorf("%w: Type %.40q is not an SNS message type", ErrMalformedSignature, m.Type)
	}
	return b.String(), nil
}

// snsHash returns the hash of a SignatureVersion: 1 is SHA1withRSA, 2 is
// SHA256withRSA.
func snsHash(version string) (crypto.Hash, error) {
	switch version {
	case "1":
		return crypto.SHA1, nil
	case "2":
		return crypto.SHA256, nil
	}
	return 0, fmt.Errorf("%w: SignatureVersion %.10q is not 1 or 2", ErrMalformedSignature, version)
}

func digest(h crypto.Hash, s string) []byte {
	if h == crypto.SHA1 {
		d := sha1.Sum([]byte(s))
		return d[:]
	}
	d := sha256.Sum256([]byte(s))
	return d[:]
}

// SNS verifies Amazon SNS HTTP(S) deliveries: the RSA signature of the
// message's canonical fields by the certificate at SigningCertURL, which is
// fetched (and cached) only from an SNS host of AWS over https, and a
// TopicArn among those configured. It answers SubscriptionConfirmation by
// fetching the SubscribeURL when that is an SNS host too, and otherwise
// records the URL for the operator. Build one with [New].
type SNS struct {
	topics  []string
	client  *http.Client
	allowed func(scheme, host string) bool

	mu    sync.Mutex
	certs map[string]*x509.Certificate // by URL; bounded by maxSNSCerts
}

// maxSNSCerts bounds the certificate cache of one SNS verifier.
const maxSNSCerts = 16

// Verify checks r's body: type, topic, certificate and signature.
func (s *SNS) Verify(r *Request) error {
	_, err := s.verify(r)
	return err
}

func (s *SNS) verify(r *Request) (*snsMessage, error) {
	var m snsMessage
	if err := json.Unmarshal(r.Body, &m); err != nil {
		return nil, fmt.Errorf("%w: body is not an SNS message", ErrMissingSignature)
	}
	if m.Signature == "" {
		return nil, fmt.Errorf("%w: SNS message has no Signature", ErrMissingSignature)
	}
	text, err := m.stringToSign()
	if err != nil {
		return nil, err
	}
	h, err := snsHash(m.SignatureVersion)
	if err != nil {
		return nil, err
	}
	sig, err := base64.StdEncoding.DecodeString(m.Signature)
	if err != nil {
		return nil, fmt.Errorf("%w: Signature is not base64", ErrMalformedSignature)
	}
	if !s.topicAllowed(m.TopicArn) {
		return nil, fmt.Errorf("%w: TopicArn %.120q is not a configured topic", ErrBadCredentials, m.TopicArn)
	}
	cert, err := s.cert(r.ctx(), m.SigningCertURL)
	if err != nil {
		return nil, err
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: the signing certificate holds no RSA key", ErrSignatureMismatch)
	}
	if err := rsa.VerifyPKCS1v15(pub, h, digest(h, text), sig); err != nil {
		return nil, fmt.Errorf("%w: Signature does not verify with the certificate at %s", ErrSignatureMismatch, m.SigningCertURL)
	}
	return &m, nil
}

func (s *SNS) topicAllowed(arn string) bool {
	for _, t := range s.topics {
		if t == arn {
			return true
		}
	}
	return false
}

// fetchable parses raw and reports whether it may be fetched: an allowed
// host, and the path of a certificate or the query of a subscription
// confirmation.
func (s *SNS) fetchable(raw string, cert bool) (*url.URL, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || !s.allowed(u.Scheme, u.Host) {
		return nil, false
	}
	if cert {
		return u, snsCertPath.MatchString(u.Path) && u.RawQuery == ""
	}
	return u, u.Query().Get("Action") == "ConfirmSubscription"
}

// cert returns the certificate at raw, fetched once.
func (s *SNS) cert(ctx context.Context, raw string) (*x509.Certificate, error) {
	u, ok := s.fetchable(raw, true)
	if !ok {
		return nil, fmt.Errorf("%w: SigningCertURL %.120q is not the https URL of a certificate on an SNS host of AWS", ErrMalformedSignature, raw)
	}
	s.mu.Lock()
	c := s.certs[raw]
	s.mu.Unlock()
	if c != nil {
		return c, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("fetch SNS certificate %s: %w", raw, err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch SNS certificate %s: %w", raw, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch SNS certificate %s: %s", raw, resp.Status)
	}
	raw64, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("fetch SNS certificate %s: %w", raw, err)
	}
	block, _ := pem.Decode(raw64)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%w: %s is not a PEM certificate", ErrSignatureMismatch, raw)
	}
	if c, err = x509.ParseCertificate(block.Bytes); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrSignatureMismatch, raw, err)
	}
	s.mu.Lock()
	if len(s.certs) >= maxSNSCerts {
		clear(s.certs)
	}
	s.certs[raw] = c
	s.mu.Unlock()
	return c, nil
}

// Handshake answers SubscriptionConfirmation and UnsubscribeConfirmation
// messages after verifying them. A SubscribeURL on an SNS host of AWS is
// fetched to confirm the subscription; any other is only shown in the
// note, for the operator to visit.
func (s *SNS) Handshake(r *Request) (*Handshake, error) {
	t := r.Header.Get("X-Amz-Sns-Message-Type")
	if t != "SubscriptionConfirmation" && t != "UnsubscribeConfirmation" {
		return nil, nil
	}
	m, err := s.verify(r)
	if err != nil {
		return nil, err
	}
	if m.Type != t {
		return nil, fmt.Errorf("%w: x-amz-sns-message-type %s but the body's Type is %s", ErrMalformedSignature, t, m.Type)
	}
	ans := &Handshake{Status: http.StatusOK, Header: http.Header{}}
	if m.Type == "UnsubscribeConfirmation" {
		ans.Note = "sns UnsubscribeConfirmation for " + m.TopicArn + " received"
		return ans, nil
	}
	u, ok := s.fetchable(m.SubscribeURL, false)
	if !ok {
		ans.Note = "sns SubscriptionConfirmation for " + m.TopicArn + ": SubscribeURL is not on an SNS host of AWS, so it was not fetched; visit it to confirm: " + m.SubscribeURL
		return ans, nil
	}
	if err := s.confirm(r.ctx(), u); err != nil {
		ans.Note = "sns SubscriptionConfirmation for " + m.TopicArn + ": confirming failed (" + err.Error() + "); visit the SubscribeURL to confirm: " + m.SubscribeURL
		return ans, nil
	}
	ans.Note = "sns SubscriptionConfirmation for " + m.TopicArn + " confirmed"
	return ans, nil
}

// confirm fetches a SubscribeURL.
func (s *SNS) confirm(ctx context.Context, u *url.URL) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return nil
}

func snsProvider() *Provider {
	return &Provider{
		Name: "aws-sns", Title: "Amazon SNS",
		Scheme:           "RSA signature (SignatureVersion 1: SHA1, 2: SHA256) of the message fields, by the certificate at SigningCertURL (https, sns.<region>.amazonaws.com only); TopicArn must be in topic_arns",
		Fields:           []string{"topic_arns*"},
		IDHeader:         "X-Amz-Sns-Message-Id",
		DedupKey:         `body.MessageId`,
		EventType:        `has(body.Subject) && body.Subject != "" ? body.Subject : body.Type`,
		Headers:          []string{"X-Amz-Sns-Message-Type", "X-Amz-Sns-Message-Id", "X-Amz-Sns-Topic-Arn"},
		Handshake:        "`SubscriptionConfirmation`: confirmed by fetching the SubscribeURL when it is on an SNS host of AWS, else shown in the request's reason",
		SignRewritesBody: true,
		SampleSecret:     snsDemoKey,
		build: func(c Config, o *Options) (Verifier, error) {
			if len(c.TopicARNs) == 0 {
				return nil, configErr("topic_arns", "required for type %q: the ARNs of the topics this source accepts", c.Type)
			}
			for _, t := range c.TopicARNs {
				if !strings.HasPrefix(t, "arn:") {
					return nil, configErr("topic_arns", "%q is not an ARN (arn:aws:sns:REGION:ACCOUNT:TOPIC)", t)
				}
			}
			s := &SNS{topics: c.TopicARNs, client: o.HTTPClient, allowed: o.CertHostAllowed, certs: map[string]*x509.Certificate{}}
			if s.client == nil {
				s.client = &http.Client{Timeout: 10 * time.Second}
			}
			if s.allowed == nil {
				s.allowed = SNSCertHost
			}
			return s, nil
		},
		sign: func(c Config, m *Message) error {
			key, err := parsePKCS8[*rsa.PrivateKey](firstSecret(c))
			if err != nil {
				return fmt.Errorf("sign as aws-sns: %w", err)
			}
			var body map[string]any
			if err := json.Unmarshal(m.Body, &body); err != nil {
				return fmt.Errorf("sign as aws-sns: body is not a JSON object: %w", err)
			}
			var msg snsMessage
			if err := json.Unmarshal(m.Body, &msg); err != nil {
				return fmt.Errorf("sign as aws-sns: %w", err)
			}
			if msg.SignatureVersion == "" {
				msg.SignatureVersion = "2"
				body["SignatureVersion"] = "2"
			}
			text, err := msg.stringToSign()
			if err != nil {
				return fmt.Errorf("sign as aws-sns: %w", err)
			}
			h, err := snsHash(msg.SignatureVersion)
			if err != nil {
				return fmt.Errorf("sign as aws-sns: %w", err)
			}
			sig, err := rsa.SignPKCS1v15(rand.Reader, key, h, digest(h, text))
			if err != nil {
				return fmt.Errorf("sign as aws-sns: %w", err)
			}
			body["Signature"] = base64.StdEncoding.EncodeToString(sig)
			b, err := json.Marshal(body)
			if err != nil {
				return err
			}
			m.Body = b
			m.Header.Set("X-Amz-Sns-Message-Type", msg.Type)
			m.Header.Set("X-Amz-Sns-Topic-Arn", msg.TopicArn)
			if msg.MessageID != "" {
				m.Header.Set("X-Amz-Sns-Message-Id", msg.MessageID)
			}
			return nil
		},
		sample: func(secret string) Config {
			return Config{Type: "aws-sns", Secret: secret, TopicARNs: []string{SNSSampleTopic}}
		},
	}
}

// SNSSampleTopic is the topic of the SNS samples.
const SNSSampleTopic = "arn:aws:sns:us-east-1:123456789012:mailroom-demo"

// SNSSampleCertificate returns a self-signed certificate (PEM) for the
// public half of secret, an SNS sample signing key: what a test serves at
// the SigningCertURL of the samples.
func SNSSampleCertificate(secret string) ([]byte, error) {
	key, err := parsePKCS8[*rsa.PrivateKey](secret)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Unix(0, 0), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}
