package verify_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/google/go-github/v84/github"
	"github.com/slack-go/slack"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stripe/stripe-go/v85/webhook"

	"github.com/mailroomhq/mailroom/internal/verify"
)

// Each fuzz target checks three things: a hostile header or body never
// makes a verifier panic; whatever we accept, the provider's own library
// accepts too (where there is one); and what our Sign helper makes always
// verifies, and stops verifying when the body changes.

// fuzzTime returns the time of Unix second ts, moved off the zero time
// that Request.Now reads as "use the wall clock".
func fuzzTime(ts int64) time.Time {
	if t := time.Unix(ts, 0); !t.IsZero() {
		return t
	}
	return time.Unix(ts+1, 0)
}

func FuzzStripe(f *testing.F) {
	f.Add("t=1700000000,v1=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39", []byte(`{"id":"evt_1"}`), "whsec_test", int64(1_700_000_000))
	f.Add("t=1700000000,v1=zz,v0=00,v1=", []byte{}, "s", int64(0))
	f.Add("t=-9223372036854775808,v1=00", []byte("x"), "s", int64(-1))
	f.Add(",,,===,t=,v1", []byte(nil), "", int64(1<<62))
	f.Fuzz(func(t *testing.T, header string, body []byte, secret string, ts int64) {
		if secret == "" {
			secret = "s"
		}
		v := mustNew(t, verify.Config{Type: "stripe", Secret: secret})
		now := fuzzTime(ts)

		// Judge the hostile header at its own timestamp, if it has one, so
		// that tolerance does not hide the signature check.
		at := now
		for pair := range strings.SplitSeq(header, ",") {
			if v, ok := strings.CutPrefix(pair, "t="); ok {
				if n, err := strconv.ParseInt(v, 10, 64); err == nil {
					at = fuzzTime(n)
				}
			}
		}
		err := v.Verify(&verify.Request{Header: stripeHeader(header), Body: body, Now: at})
		if err == nil {
			if theirs := webhook.ValidatePayloadIgnoringTolerance(body, header, secret); theirs != nil {
				t.Fatalf("we accepted %q, stripe-go refuses: %v", header, theirs)
			}
		}

		signed := verify.SignStripe(secret, now, body)
		if err := v.Verify(&verify.Request{Header: stripeHeader(signed), Body: body, Now: now}); err != nil {
			t.Fatalf("SignStripe output %q refused: %v", signed, err)
		}
		if err := webhook.ValidatePayloadIgnoringTolerance(body, signed, secret); err != nil {
			t.Fatalf("stripe-go refuses SignStripe output %q: %v", signed, err)
		}
		tampered := append(bytes.Clone(body), 'x')
		if err := v.Verify(&verify.Request{Header: stripeHeader(signed), Body: tampered, Now: now}); err == nil {
			t.Fatal("tampered body accepted")
		}

		// A valid signature inside hostile text: we may accept only what
		// stripe-go accepts.
		mixed := header[:len(header)/2] + signed + header[len(header)/2:]
		if err := v.Verify(&verify.Request{Header: stripeHeader(mixed), Body: body, Now: now}); err == nil {
			if theirs := webhook.ValidatePayloadIgnoringTolerance(body, mixed, secret); theirs != nil {
				t.Fatalf("we accepted %q, stripe-go refuses: %v", mixed, theirs)
			}
		}
	})
}

func FuzzStandardWebhooks(f *testing.F) {
	f.Add("msg_1", "1700000000", "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=", []byte(`{"type":"x"}`), []byte("key"), int64(1_700_000_000))
	f.Add("", "", "", []byte{}, []byte{}, int64(0))
	f.Add("a.b", "+0017", "v1, v1,, ,v1 v2,abc", []byte("."), []byte{0}, int64(-62135596800))
	f.Add("msg", "99999999999999999999", "v1,====", []byte(nil), []byte{255, 254}, int64(1<<62))
	f.Fuzz(func(t *testing.T, id, tsHeader, sigHeader string, body, key []byte, ts int64) {
		if len(key) == 0 {
			key = []byte{1}
		}
		secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
		v := mustNew(t, verify.Config{Type: "standard-webhooks", Secret: secret})
		lib, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}

		now := fuzzTime(ts)
		if parsed, err := strconv.ParseInt(tsHeader, 10, 64); err == nil {
			now = fuzzTime(parsed)
		}
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", tsHeader)
		h.Set("webhook-signature", sigHeader)
		if err := v.Verify(&verify.Request{Header: h, Body: body, Now: now}); err == nil {
			if theirs := lib.VerifyIgnoringTimestamp(body, h); theirs != nil {
				t.Fatalf("we accepted %v, the library refuses: %v", h, theirs)
			}
		}

		if id == "" {
			id = "msg"
		}
		at := fuzzTime(ts)
		sig, err := verify.SignStandardWebhooks(secret, id, at, body)
		if err != nil {
			t.Fatal(err)
		}
		signed := swHeaders(id, at, sig)
		if err := v.Verify(&verify.Request{Header: signed, Body: body, Now: at}); err != nil {
			t.Fatalf("SignStandardWebhooks output refused: %v", err)
		}
		if err := lib.VerifyIgnoringTimestamp(body, signed); err != nil {
			t.Fatalf("the library refuses SignStandardWebhooks output: %v", err)
		}
		tampered := append(bytes.Clone(body), 'x')
		if err := v.Verify(&verify.Request{Header: signed, Body: tampered, Now: at}); err == nil {
			t.Fatal("tampered body accepted")
		}

		// A valid signature inside hostile text: we may accept only what
		// the library accepts.
		mixed := swHeaders(id, at, sigHeader[:len(sigHeader)/2]+sig+sigHeader[len(sigHeader)/2:])
		if err := v.Verify(&verify.Request{Header: mixed, Body: body, Now: at}); err == nil {
			if theirs := lib.VerifyIgnoringTimestamp(body, mixed); theirs != nil {
				t.Fatalf("we accepted %v, the library refuses: %v", mixed, theirs)
			}
		}
	})
}

func FuzzGitHub(f *testing.F) {
	f.Add("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", []byte(`{"zen":"x"}`), "secret")
	f.Add("sha1=00", []byte{}, "")
	f.Add("sha256=", []byte(nil), "s")
	f.Add("sha256=0", []byte("a"), "s")
	f.Fuzz(func(t *testing.T, header string, body []byte, secret string) {
		if secret == "" {
			secret = "s"
		}
		v := mustNew(t, verify.Config{Type: "github", Secret: secret})
		h := http.Header{"X-Hub-Signature-256": {header}}
		if err := v.Verify(&verify.Request{Header: h, Body: body}); err == nil {
			if theirs := github.ValidateSignature(header, body, []byte(secret)); theirs != nil {
				t.Fatalf("we accepted %q, go-github refuses: %v", header, theirs)
			}
		}
		signed := verify.SignGitHub(secret, body)
		if err := v.Verify(&verify.Request{Header: http.Header{"X-Hub-Signature-256": {signed}}, Body: body}); err != nil {
			t.Fatalf("SignGitHub output refused: %v", err)
		}
		if err := github.ValidateSignature(signed, body, []byte(secret)); err != nil {
			t.Fatalf("go-github refuses SignGitHub output: %v", err)
		}
		if err := v.Verify(&verify.Request{Header: http.Header{"X-Hub-Signature-256": {signed}}, Body: append(bytes.Clone(body), 'x')}); err == nil {
			t.Fatal("tampered body accepted")
		}
		mixed := header[:len(header)/2] + signed + header[len(header)/2:]
		if err := v.Verify(&verify.Request{Header: http.Header{"X-Hub-Signature-256": {mixed}}, Body: body}); err == nil {
			if theirs := github.ValidateSignature(mixed, body, []byte(secret)); theirs != nil {
				t.Fatalf("we accepted %q, go-github refuses: %v", mixed, theirs)
			}
		}
	})
}

func FuzzShopify(f *testing.F) {
	f.Add(sha256B64, []byte(hmacBody), hmacSecret)
	f.Add("", []byte{}, "")
	f.Add("====", []byte(nil), "s")
	f.Add("YQ", []byte("a"), "s")
	f.Fuzz(func(t *testing.T, header string, body []byte, secret string) {
		if secret == "" {
			secret = "s"
		}
		v := mustNew(t, verify.Config{Type: "shopify", Secret: secret})
		_ = v.Verify(&verify.Request{Header: http.Header{"X-Shopify-Hmac-Sha256": {header}}, Body: body})
		signed := verify.SignShopify(secret, body)
		if err := v.Verify(&verify.Request{Header: http.Header{"X-Shopify-Hmac-Sha256": {signed}}, Body: body}); err != nil {
			t.Fatalf("SignShopify output refused: %v", err)
		}
		if err := v.Verify(&verify.Request{Header: http.Header{"X-Shopify-Hmac-Sha256": {signed}}, Body: append(bytes.Clone(body), 'x')}); err == nil {
			t.Fatal("tampered body accepted")
		}
	})
}

func FuzzHMAC(f *testing.F) {
	f.Add("sha256="+sha256Hex, []byte(hmacBody), hmacSecret, "sha256=", uint8(0), uint8(0))
	f.Add(sha512B64, []byte(hmacBody), hmacSecret, "", uint8(1), uint8(1))
	f.Add("", []byte{}, "", "", uint8(2), uint8(3))
	f.Add("ß", []byte(nil), "s", "\xff\xfe", uint8(0), uint8(1))
	f.Fuzz(func(t *testing.T, header string, body []byte, secret, prefix string, alg, enc uint8) {
		if secret == "" {
			secret = "s"
		}
		cfg := verify.Config{
			Type: "hmac", Header: "X-Signature", Secret: secret, Prefix: prefix,
			Algorithm: []string{"", "sha256", "sha512"}[alg%3],
			Encoding:  []string{"", "hex", "base64"}[enc%3],
		}
		v := mustNew(t, cfg)
		_ = v.Verify(&verify.Request{Header: http.Header{"X-Signature": {header}}, Body: body})
		signed, err := verify.SignHMAC(cfg, body)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Verify(&verify.Request{Header: http.Header{"X-Signature": {signed}}, Body: body}); err != nil {
			t.Fatalf("SignHMAC output %q refused: %v", signed, err)
		}
		if err := v.Verify(&verify.Request{Header: http.Header{"X-Signature": {signed}}, Body: append(bytes.Clone(body), 'x')}); err == nil {
			t.Fatal("tampered body accepted")
		}
	})
}

func FuzzBasic(f *testing.F) {
	f.Add("Basic YWxpY2U6cGE6c3M=", "alice", "pa:ss")
	f.Add("Basic ", "a", "b")
	f.Add("basic Og==", "a", "b")
	f.Add("Basic\x00", "", "")
	f.Fuzz(func(t *testing.T, auth, user, pass string) {
		if user == "" || pass == "" || strings.Contains(user, ":") {
			return
		}
		v := mustNew(t, verify.Config{Type: "basic", Username: user, Password: pass})
		if err := v.Verify(&verify.Request{Header: http.Header{"Authorization": {auth}}}); err == nil {
			// net/http must read the same credentials from the header.
			r := &http.Request{Header: http.Header{"Authorization": {auth}}}
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != pass {
				t.Fatalf("we accepted %q for %q:%q, net/http reads %q:%q (ok=%v)", auth, user, pass, u, p, ok)
			}
		}
		r := &http.Request{Header: http.Header{}}
		r.SetBasicAuth(user, pass)
		if err := v.Verify(&verify.Request{Header: r.Header}); err != nil {
			t.Fatalf("net/http SetBasicAuth header refused: %v", err)
		}
	})
}

func FuzzAPIKey(f *testing.F) {
	f.Add("k-123", "k-123")
	f.Add("k-12", "k-123")
	f.Add("", "x")
	f.Fuzz(func(t *testing.T, given, key string) {
		if key == "" {
			return
		}
		v := mustNew(t, verify.Config{Type: "api-key", Secret: key})
		err := v.Verify(&verify.Request{Header: http.Header{"X-Api-Key": {given}}})
		if (err == nil) != (given == key) {
			t.Fatalf("given %q, key %q: Verify = %v", given, key, err)
		}
	})
}

// FuzzSlack checks that what the Slack verifier accepts is within Slack's
// five minutes and that slack-go's SecretsVerifier accepts it too, and
// that signed requests verify.
func FuzzSlack(f *testing.F) {
	f.Add("v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503", int64(0), []byte("token=x"), "8f742231b10e8888abcd99yyyzzz85a5")
	f.Add("v0=", int64(-400), []byte{}, "s")
	f.Add("v1=00", int64(1), []byte("{}"), "")
	f.Add("v0=00", int64(-299), []byte("{}"), "s")
	f.Fuzz(func(t *testing.T, sig string, skew int64, body []byte, secret string) {
		if secret == "" {
			secret = "s"
		}
		now := time.Now()
		skew %= 1000
		at := time.Unix(now.Unix()+skew, 0)
		ts := strconv.FormatInt(at.Unix(), 10)
		h := http.Header{"X-Slack-Signature": {sig}, "X-Slack-Request-Timestamp": {ts}}
		v := mustNew(t, verify.Config{Type: "slack", Secret: secret})
		if err := v.Verify(&verify.Request{Header: h, Body: body, Now: now}); err == nil {
			if d := now.Sub(at).Abs(); d > 5*time.Minute {
				t.Fatalf("we accepted a timestamp %s from now", d)
			}
			// slack-go judges the timestamp by its own clock, read after
			// ours: it is asked only well inside the five minutes, so
			// that its answer does not depend on the time between the
			// two reads (at skew -299, read at x.9995 s and 1 ms apart,
			// we accept and it refuses).
			if skew > -240 && skew < 240 {
				sv, err := slack.NewSecretsVerifier(h, secret)
				if err == nil {
					sv.Write(body)
					err = sv.Ensure()
				}
				if err != nil {
					t.Fatalf("we accepted %q at %s, slack-go refuses: %v", sig, ts, err)
				}
			}
		}
		m := &verify.Message{Body: body, Now: now}
		if err := verify.Sign(verify.Config{Type: "slack", Secret: secret}, m); err != nil {
			t.Fatal(err)
		}
		if err := v.Verify(&verify.Request{Header: m.Header, Body: body, Now: now}); err != nil {
			t.Fatalf("signed request refused: %v", err)
		}
		if err := v.Verify(&verify.Request{Header: m.Header, Body: append(bytes.Clone(body), 'x'), Now: now}); err == nil {
			t.Fatal("tampered body accepted")
		}
	})
}

// FuzzDiscord checks that what the Discord verifier accepts,
// discordgo.VerifyInteraction accepts too.
func FuzzDiscord(f *testing.F) {
	f.Add("00", "1700000000", []byte(`{"type":1}`))
	f.Add("", "", []byte{})
	f.Add(strings.Repeat("ab", 64), "+1", []byte("x"))
	row, err := verify.Lookup("discord")
	if err != nil {
		f.Fatal(err)
	}
	cfg := row.SampleConfig(row.SampleSecret)
	pub, _ := hex.DecodeString(cfg.PublicKey)
	f.Fuzz(func(t *testing.T, sig, ts string, body []byte) {
		v := mustNew(t, cfg)
		h := http.Header{"X-Signature-Ed25519": {sig}, "X-Signature-Timestamp": {ts}}
		at := time.Now()
		if n, err := strconv.ParseInt(ts, 10, 64); err == nil {
			at = fuzzTime(n)
		}
		if err := v.Verify(&verify.Request{Header: h, Body: body, Now: at}); err == nil {
			r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
			r.Header = h
			if !discordgo.VerifyInteraction(r, ed25519.PublicKey(pub)) {
				t.Fatalf("we accepted %q %q, discordgo refuses", sig, ts)
			}
		}
		m := &verify.Message{Body: body, Now: time.Now()}
		if err := verify.Sign(cfg, m); err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		r.Header = m.Header
		if !discordgo.VerifyInteraction(r, ed25519.PublicKey(pub)) {
			t.Fatal("discordgo refuses what Sign made")
		}
	})
}

// FuzzSNS feeds hostile SNS bodies to a verifier that may fetch nothing:
// it must never panic, and never accept (no certificate can be had).
func FuzzSNS(f *testing.F) {
	f.Add([]byte(`{"Type":"Notification","MessageId":"1","TopicArn":"arn:aws:sns:us-east-1:123456789012:mailroom-demo","Message":"m","Timestamp":"t","SignatureVersion":"1","Signature":"AAAA","SigningCertURL":"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-a.pem"}`), "Notification")
	f.Add([]byte(`{"Type":"SubscriptionConfirmation","Subject":null,"SignatureVersion":"2","Signature":"=","SubscribeURL":"http://[::1"}`), "SubscriptionConfirmation")
	f.Add([]byte(`[]`), "")
	f.Fuzz(func(t *testing.T, body []byte, msgType string) {
		v, err := verify.New(verify.Config{Type: "aws-sns", TopicARNs: []string{verify.SNSSampleTopic}},
			&verify.Options{CertHostAllowed: func(string, string) bool { return false }})
		if err != nil {
			t.Fatal(err)
		}
		r := &verify.Request{Header: http.Header{"X-Amz-Sns-Message-Type": {msgType}}, Body: body}
		if err := v.Verify(r); err == nil {
			t.Fatalf("accepted %q without a certificate", body)
		}
		if ans, err := v.(verify.Handshaker).Handshake(r); err == nil && ans != nil {
			t.Fatalf("answered %q without a certificate", body)
		}
	})
}

// FuzzTwilio signs random forms at random URLs and checks they verify, and
// stop verifying when a parameter changes.
func FuzzTwilio(f *testing.F) {
	f.Add("https://hooks.example/e/twilio?x=1", "CallSid=CA1&From=%2B1555", "tok")
	f.Add("http://h:8080/p", "", "k")
	f.Add("https://h/e/t?bodySHA256=00", "a=1&a=2&a=1", "")
	f.Fuzz(func(t *testing.T, rawURL, form, secret string) {
		if secret == "" {
			secret = "s"
		}
		u, err := url.Parse(rawURL)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.Query().Has("bodySHA256") {
			return
		}
		if _, err := url.ParseQuery(form); err != nil {
			return
		}
		cfg := verify.Config{Type: "twilio", Secret: secret}
		h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
		m := &verify.Message{URL: rawURL, Header: h, Body: []byte(form), Now: time.Now()}
		if err := verify.Sign(cfg, m); err != nil {
			t.Fatal(err)
		}
		v := mustNew(t, cfg)
		if err := v.Verify(&verify.Request{Header: m.Header, Body: m.Body, URL: m.URL}); err != nil {
			t.Fatalf("signed %s %q refused: %v", rawURL, form, err)
		}
		changed := form + "&Tampered=1"
		if err := v.Verify(&verify.Request{Header: m.Header, Body: []byte(changed), URL: m.URL}); err == nil {
			t.Fatalf("tampered form %q accepted", changed)
		}
	})
}
