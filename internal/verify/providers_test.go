package verify_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/verify"
)

// TestTwilioPublishedVectors checks the Twilio verifier against the test
// vectors of Twilio's own Go library (twilio-go client/request_validator_test.go).
func TestTwilioPublishedVectors(t *testing.T) {
	t.Parallel()
	const testURL = "https://mycompany.com/myapp.php?foo=1&bar=2"
	form := url.Values{"Digits": {"1234"}, "CallSid": {"CA1234567890ABCDE"}, "To": {"+18005551212"},
		"Caller": {"+14158675309"}, "From": {"+14158675309"}}.Encode()
	jsonBody := `{"property": "value", "boolean": true}`
	const bodyHash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
	formHeader := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	tests := []struct {
		name   string
		url    string
		header http.Header
		body   string
		sig    string
		want   error
	}{
		{"form", testURL, formHeader, form, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", nil},
		{"form, URL with a port, signed without", strings.Replace(testURL, ".com", ".com:1234", 1), formHeader, form, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", nil},
		{"form, signed with the default port", testURL, formHeader, form, "kvajT1Ptam85bY51eRf/AJRuM3w=", nil},
		{"form over http", strings.Replace(testURL, "https", "http", 1), formHeader, form, "0ZXoZLH/DfblKGATFgpif+LLRf4=", nil},
		{"form over http with a port", strings.Replace(strings.Replace(testURL, ".com", ".com:1234", 1), "https", "http", 1), formHeader, form, "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=", nil},
		{"form, wrong signature", testURL, formHeader, form, "V1JPTkcgU0lHTkFUVVJFIQ==", verify.ErrSignatureMismatch},
		{"form, another parameter", testURL, formHeader, form + "&Digits=9", "RSOYDt4T1cUTdK1PDd93/VVr8B8=", verify.ErrSignatureMismatch},
		{"json with bodySHA256", testURL + "&bodySHA256=" + bodyHash, jsonHeader, jsonBody, "a9nBmqA0ju/hNViExpshrM61xv4=", nil},
		{"json, only bodySHA256", "https://mycompany.com/myapp.php?bodySHA256=" + bodyHash, jsonHeader, jsonBody, "y77kIzt2vzLz71DgmJGsen2scGs=", nil},
		{"json, body changed", testURL + "&bodySHA256=" + bodyHash, jsonHeader, jsonBody + " ", "a9nBmqA0ju/hNViExpshrM61xv4=", verify.ErrSignatureMismatch},
		{"json without bodySHA256", testURL, jsonHeader, jsonBody, "RSOYDt4T1cUTdK1PDd93/VVr8B8=", verify.ErrMalformedSignature},
	}
	v := mustNew(t, verify.Config{Type: "twilio", Secret: "12345"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := tt.header.Clone()
			h.Set("X-Twilio-Signature", tt.sig)
			checkErr(t, v.Verify(&verify.Request{Header: h, Body: []byte(tt.body), URL: tt.url}), tt.want)
		})
	}
	t.Run("configured URL wins", func(t *testing.T) {
		t.Parallel()
		v := mustNew(t, verify.Config{Type: "twilio", Secret: "12345", URL: "https://mycompany.com/myapp.php"})
		h := formHeader.Clone()
		h.Set("X-Twilio-Signature", "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
		// Behind a proxy the request arrives for another host; the query
		// is still the request's.
		checkErr(t, v.Verify(&verify.Request{Header: h, Body: []byte(form), URL: "http://10.0.0.7:8080/e/twilio?foo=1&bar=2"}), nil)
	})
}

// TestSlackPublishedVector checks the example of Slack's "Verifying
// requests from Slack" page.
func TestSlackPublishedVector(t *testing.T) {
	t.Parallel()
	body := "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	h := http.Header{"X-Slack-Request-Timestamp": {"1531420618"}, "X-Slack-Signature": {"v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"}}
	v := mustNew(t, verify.Config{Type: "slack", Secret: "8f742231b10e8888abcd99yyyzzz85a5"})
	checkErr(t, v.Verify(&verify.Request{Header: h, Body: []byte(body), Now: time.Unix(1531420618, 0)}), nil)
	checkErr(t, v.Verify(&verify.Request{Header: h, Body: []byte(body), Now: time.Unix(1531420618+3600, 0)}), verify.ErrTimestampOutOfTolerance)
	checkErr(t, v.Verify(&verify.Request{Header: h, Body: []byte(body + "x"), Now: time.Unix(1531420618, 0)}), verify.ErrSignatureMismatch)
}

// handshake signs body (with extra headers) as the provider of cfg would
// and asks the verifier for its handshake answer.
func handshake(t *testing.T, cfg verify.Config, method, rawURL string, header http.Header, body string, opts *verify.Options) (*verify.Handshake, error) {
	t.Helper()
	now := time.Now()
	m := &verify.Message{Method: method, URL: rawURL, Header: header.Clone(), Body: []byte(body), Now: now}
	if m.Header == nil {
		m.Header = http.Header{}
	}
	if method == http.MethodPost && cfg.Type != "microsoft-graph" { // Graph's check is unsigned
		if err := verify.Sign(cfg, m); err != nil {
			t.Fatalf("Sign: %v", err)
		}
	}
	v, err := verify.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	hs, ok := v.(verify.Handshaker)
	if !ok {
		t.Fatalf("%s verifier answers no handshake", cfg.Type)
	}
	u, _ := url.Parse(m.URL)
	return hs.Handshake(&verify.Request{Method: method, URL: m.URL, Query: u.Query(), Header: m.Header, Body: m.Body, Now: now})
}

func sample(t *testing.T, name string) verify.Config {
	t.Helper()
	p, err := verify.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return p.SampleConfig(p.SampleSecret)
}

// TestHandshakes answers each provider's endpoint check as the provider
// documents it, and refuses a forged one.
func TestHandshakes(t *testing.T) {
	t.Parallel()
	zoomMAC := func(secret, token string) string {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(token))
		return hex.EncodeToString(m.Sum(nil))
	}
	meta := verify.Config{Type: "meta", Secret: "app-secret", VerifyToken: "my-verify-token"}
	tests := []struct {
		name     string
		cfg      verify.Config
		method   string
		url      string
		header   http.Header
		body     string
		wantBody string // "" with wantNone: not a handshake
		wantCode int
		wantNone bool
	}{
		{name: "slack url_verification", cfg: sample(t, "slack"), method: "POST", url: "https://h/e/slack",
			body:     `{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`,
			wantBody: "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"},
		{name: "slack event is no handshake", cfg: sample(t, "slack"), method: "POST", url: "https://h/e/slack",
			body: `{"type":"event_callback","event":{"type":"message"}}`, wantNone: true},
		{name: "zoom endpoint.url_validation", cfg: sample(t, "zoom"), method: "POST", url: "https://h/e/zoom",
			body:     `{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}`,
			wantBody: `{"encryptedToken":"` + zoomMAC(sample(t, "zoom").Secret, "qgg8vlvZRS6UYooatFL8Aw") + `","plainToken":"qgg8vlvZRS6UYooatFL8Aw"}`},
		{name: "twitch webhook_callback_verification", cfg: sample(t, "twitch"), method: "POST", url: "https://h/e/twitch",
			header:   http.Header{"Twitch-Eventsub-Message-Type": {"webhook_callback_verification"}, "Twitch-Eventsub-Message-Id": {"e76c6bd4-55c9-4987-8304-da1588d8988b"}},
			body:     `{"challenge":"pogchamp-kappa-360noscope-vohiyo","subscription":{"id":"f1c2a387-161a-49f9-a165-0f21d7a4e1c4","type":"channel.follow","version":"2"}}`,
			wantBody: "pogchamp-kappa-360noscope-vohiyo"},
		{name: "meta hub.challenge", cfg: meta, method: "GET", url: "https://h/e/meta?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=my-verify-token",
			wantBody: "1158201444"},
		{name: "dropbox challenge", cfg: sample(t, "dropbox"), method: "GET", url: "https://h/e/dropbox?challenge=f8a4Bq",
			wantBody: "f8a4Bq"},
		{name: "microsoft graph validationToken", cfg: sample(t, "microsoft-graph"), method: "POST",
			url: "https://h/e/graph?validationToken=Validation%3A+Testing+client+application+reachability+for+subscription+Request-Id%3A+1", body: "",
			wantBody: "Validation: Testing client application reachability for subscription Request-Id: 1"},
		{name: "discord interactions PING", cfg: sample(t, "discord"), method: "POST", url: "https://h/e/discord",
			body: `{"id":"1","application_id":"2","type":1,"version":1,"token":"t"}`, wantBody: `{"type":1}`},
		{name: "discord webhook events PING", cfg: sample(t, "discord"), method: "POST", url: "https://h/e/discord",
			body: `{"version":1,"application_id":"2","type":0}`, wantCode: 204},
		{name: "discord event is no handshake", cfg: sample(t, "discord"), method: "POST", url: "https://h/e/discord",
			body: `{"version":1,"application_id":"2","type":1,"event":{"type":"APPLICATION_AUTHORIZED"}}`, wantNone: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ans, err := handshake(t, tt.cfg, tt.method, tt.url, tt.header, tt.body, nil)
			if err != nil {
				t.Fatalf("Handshake: %v", err)
			}
			if tt.wantNone {
				if ans != nil {
					t.Fatalf("Handshake = %+v, want none", ans)
				}
				return
			}
			if ans == nil {
				t.Fatal("Handshake = nil, want an answer")
			}
			if code := max(tt.wantCode, 200); ans.Status != code || string(ans.Body) != tt.wantBody || ans.Note == "" {
				t.Fatalf("Handshake = %d %q (note %q), want %d %q", ans.Status, ans.Body, ans.Note, code, tt.wantBody)
			}
		})
	}
}

// TestHandshakesRefuseForgeries checks that a signed handshake is verified
// before it is answered, and that Meta's needs the right token.
func TestHandshakesRefuseForgeries(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, typ, body string
		header          http.Header
	}{
		{"slack", "slack", `{"type":"url_verification","challenge":"c"}`, nil},
		{"zoom", "zoom", `{"event":"endpoint.url_validation","payload":{"plainToken":"p"}}`, nil},
		{"twitch", "twitch", `{"challenge":"c"}`, http.Header{"Twitch-Eventsub-Message-Type": {"webhook_callback_verification"}}},
		{"discord", "discord", `{"type":1}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			signer := sample(t, tc.typ)
			// Signed with another secret: the endpoint must not answer.
			other := signer
			if tc.typ == "discord" {
				seed := sha256.Sum256([]byte("another key"))
				other = mustLookup(t, "discord").SampleConfig(hex.EncodeToString(seed[:]))
				other.PublicKey = signer.PublicKey
			} else {
				other.Secret = "not the secret"
			}
			m := &verify.Message{Header: tc.header.Clone(), Body: []byte(tc.body), Now: time.Now()}
			if err := verify.Sign(other, m); err != nil {
				t.Fatal(err)
			}
			v := mustNew(t, signer)
			_, err := v.(verify.Handshaker).Handshake(&verify.Request{Header: m.Header, Body: m.Body, Now: time.Now()})
			checkErr(t, err, verify.ErrSignatureMismatch)
		})
	}
	t.Run("meta wrong token", func(t *testing.T) {
		t.Parallel()
		for _, cfg := range []verify.Config{{Type: "meta", Secret: "s", VerifyToken: "right"}, {Type: "meta", Secret: "s"}} {
			_, err := handshake(t, cfg, "GET", "https://h/e/meta?hub.mode=subscribe&hub.challenge=1&hub.verify_token=wrong", nil, "", nil)
			checkErr(t, err, verify.ErrBadCredentials)
		}
	})
}

func mustLookup(t *testing.T, name string) *verify.Provider {
	t.Helper()
	p, err := verify.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// snsServer serves the SNS sample certificate and a SubscribeURL on
// loopback, counting the hits of each.
type snsServer struct {
	url              string
	certHits, subHit atomic.Int32
	opts             *verify.Options
}

func newSNSServer(t *testing.T) *snsServer {
	t.Helper()
	p := mustLookup(t, "aws-sns")
	cert, err := verify.SNSSampleCertificate(p.SampleSecret)
	if err != nil {
		t.Fatal(err)
	}
	s := &snsServer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("Action") == "ConfirmSubscription" {
			s.subHit.Add(1)
			w.Write([]byte("<ConfirmSubscriptionResponse/>"))
			return
		}
		s.certHits.Add(1)
		w.Write(cert)
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	host := strings.TrimPrefix(srv.URL, "http://")
	s.opts = &verify.Options{CertHostAllowed: func(scheme, h string) bool { return scheme == "http" && h == host }}
	return s
}

// snsMessage returns a signed SNS message of type typ.
func snsMessage(t *testing.T, certURL, typ, topic, subscribeURL string) (http.Header, []byte) {
	t.Helper()
	body := map[string]any{"Type": typ, "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b", "TopicArn": topic,
		"Message": `{"order":"1042"}`, "Timestamp": "2026-12-03T10:00:00.000Z", "SignatureVersion": "1", "SigningCertURL": certURL}
	if typ != "Notification" {
		body["Token"] = "2336412f37fb687f5d51e6e2425"
		body["SubscribeURL"] = subscribeURL
	} else {
		body["Subject"] = "order.shipped"
	}
	b, _ := json.Marshal(body)
	m := &verify.Message{Body: b, Now: time.Now()}
	if err := verify.Sign(sample(t, "aws-sns"), m); err != nil {
		t.Fatal(err)
	}
	return m.Header, m.Body
}

// TestSNS checks SNS messages against a certificate served on loopback,
// with the AWS host check injected to allow it.
func TestSNS(t *testing.T) {
	t.Parallel()
	srv := newSNSServer(t)
	cfg := sample(t, "aws-sns")
	certURL := srv.url + "/SimpleNotificationService-test.pem"
	v, err := verify.New(cfg, srv.opts)
	if err != nil {
		t.Fatal(err)
	}
	h, body := snsMessage(t, certURL, "Notification", verify.SNSSampleTopic, "")
	checkErr(t, v.Verify(&verify.Request{Header: h, Body: body}), nil)
	checkErr(t, v.Verify(&verify.Request{Header: h, Body: body}), nil)
	if n := srv.certHits.Load(); n != 1 {
		t.Errorf("certificate fetched %d times, want once (cached)", n)
	}
	tampered := strings.Replace(string(body), "1042", "1043", 1)
	checkErr(t, v.Verify(&verify.Request{Header: h, Body: []byte(tampered)}), verify.ErrSignatureMismatch)

	t.Run("other topic", func(t *testing.T) {
		h, body := snsMessage(t, certURL, "Notification", "arn:aws:sns:us-east-1:999999999999:theirs", "")
		checkErr(t, v.Verify(&verify.Request{Header: h, Body: body}), verify.ErrBadCredentials)
	})
	t.Run("other paths of an allowed host are never fetched", func(t *testing.T) {
		before := srv.certHits.Load()
		for _, p := range []string{"/latest/meta-data.pem", "/SimpleNotificationService-x.pem?a=b", "/a/SimpleNotificationService-x.pem"} {
			h, body := snsMessage(t, srv.url+p, "Notification", verify.SNSSampleTopic, "")
			checkErr(t, v.Verify(&verify.Request{Header: h, Body: body}), verify.ErrMalformedSignature)
		}
		h, body := snsMessage(t, certURL, "SubscriptionConfirmation", verify.SNSSampleTopic, srv.url+"/?Action=Publish")
		ans, err := v.(verify.Handshaker).Handshake(&verify.Request{Header: h, Body: body})
		if err != nil || ans == nil || strings.Contains(ans.Note, "confirmed") {
			t.Fatalf("Handshake = %+v, %v", ans, err)
		}
		if srv.certHits.Load() != before || srv.subHit.Load() != 0 {
			t.Fatal("the verifier fetched a URL that is no certificate or confirmation")
		}
	})
	t.Run("certificate off AWS is never fetched", func(t *testing.T) {
		before := srv.certHits.Load()
		strict, err := verify.New(cfg, nil) // the default host check
		if err != nil {
			t.Fatal(err)
		}
		h, body := snsMessage(t, srv.url+"/evil.pem", "Notification", verify.SNSSampleTopic, "")
		checkErr(t, strict.Verify(&verify.Request{Header: h, Body: body}), verify.ErrMalformedSignature)
		if srv.certHits.Load() != before {
			t.Fatal("the verifier fetched a certificate from a host that is not AWS")
		}
	})
	t.Run("subscription confirmed on an allowed host", func(t *testing.T) {
		h, body := snsMessage(t, certURL, "SubscriptionConfirmation", verify.SNSSampleTopic, srv.url+"/?Action=ConfirmSubscription&Token=2336412f37fb687f5d51e6e2425")
		ans, err := v.(verify.Handshaker).Handshake(&verify.Request{Header: h, Body: body})
		if err != nil || ans == nil || !strings.Contains(ans.Note, "confirmed") || srv.subHit.Load() != 1 {
			t.Fatalf("Handshake = %+v, %v; SubscribeURL hits %d", ans, err, srv.subHit.Load())
		}
	})
	t.Run("subscription elsewhere is shown, not fetched", func(t *testing.T) {
		before := srv.subHit.Load()
		h, body := snsMessage(t, certURL, "SubscriptionConfirmation", verify.SNSSampleTopic, "http://169.254.169.254/latest/meta-data/")
		ans, err := v.(verify.Handshaker).Handshake(&verify.Request{Header: h, Body: body})
		if err != nil || ans == nil || !strings.Contains(ans.Note, "http://169.254.169.254/latest/meta-data/") || srv.subHit.Load() != before {
			t.Fatalf("Handshake = %+v, %v", ans, err)
		}
	})
	t.Run("default host check", func(t *testing.T) {
		for host, want := range map[string]bool{"sns.us-east-1.amazonaws.com": true, "sns.cn-north-1.amazonaws.com.cn": true,
			"sns.us-east-1.amazonaws.com.evil.example": false, "evilsns.us-east-1.amazonaws.com": false, "s3.amazonaws.com": false} {
			if got := verify.SNSCertHost("https", host); got != want {
				t.Errorf("SNSCertHost(https, %s) = %v, want %v", host, got, want)
			}
		}
		if verify.SNSCertHost("http", "sns.us-east-1.amazonaws.com") {
			t.Error("SNSCertHost accepts plain http")
		}
	})
}

// TestConfigErrorsOfProviders checks what the new providers require.
func TestConfigErrorsOfProviders(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg   verify.Config
		field string
	}{
		{verify.Config{Type: "discord"}, "public_key"},
		{verify.Config{Type: "discord", PublicKey: "abcd"}, "public_key"},
		{verify.Config{Type: "sendgrid", PublicKey: "bm90IGEga2V5"}, "public_key"},
		{verify.Config{Type: "aws-sns"}, "topic_arns"},
		{verify.Config{Type: "aws-sns", TopicARNs: []string{"orders"}}, "topic_arns"},
		{verify.Config{Type: "slack"}, "secret"},
		{verify.Config{Type: "gitlab"}, "secret"},
		{verify.Config{Type: "postmark", Username: "u"}, "password"},
	} {
		_, err := verify.New(tc.cfg, nil)
		var ce *verify.ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("New(%+v) = %v, want a ConfigError on %s", tc.cfg, err, tc.field)
		}
	}
}

// TestHubSpotV3 checks HubSpot's v3 signature computed as its docs say:
// base64 HMAC-SHA256 of method + URI + body + timestamp, the URI with the
// listed reserved characters percent-decoded, and a timestamp in ms.
func TestHubSpotV3(t *testing.T) {
	t.Parallel()
	const secret = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
	body := `[{"eventId":1,"subscriptionType":"contact.creation"}]`
	now := time.UnixMilli(1_700_000_000_123)
	ts := "1700000000123"
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("POST" + "https://hooks.example/e/hubspot?portal=62515&from=a:b@c" + body + ts))
	sig := base64Std(m.Sum(nil))
	h := http.Header{"X-Hubspot-Signature-V3": {sig}, "X-Hubspot-Request-Timestamp": {ts}}
	v := mustNew(t, verify.Config{Type: "hubspot", Secret: secret})
	req := &verify.Request{Method: "POST", URL: "https://hooks.example/e/hubspot?portal=62515&from=a%3Ab%40c", Header: h, Body: []byte(body), Now: now}
	checkErr(t, v.Verify(req), nil)
	req.Method = "PUT"
	checkErr(t, v.Verify(req), verify.ErrSignatureMismatch)
	req.Method, req.Now = "POST", now.Add(10*time.Minute)
	checkErr(t, v.Verify(req), verify.ErrTimestampOutOfTolerance)
}

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestSendGridPublishedVector checks the SendGrid verifier against the
// vector of SendGrid's Go library (sendgrid-go helpers/eventwebhook).
func TestSendGridPublishedVector(t *testing.T) {
	t.Parallel()
	const (
		ts  = "1588788367"
		pub = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA=="
		sig = "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2j/0="
	)
	body := []byte(`{"category":"example_payload","event":"test_event","message_id":"message_id"}`)
	v := mustNew(t, verify.Config{Type: "sendgrid", PublicKey: pub})
	h := http.Header{"X-Twilio-Email-Event-Webhook-Signature": {sig}, "X-Twilio-Email-Event-Webhook-Timestamp": {ts}}
	now := time.Unix(1588788367, 0)
	checkErr(t, v.Verify(&verify.Request{Header: h, Body: body, Now: now}), nil)
	checkErr(t, v.Verify(&verify.Request{Header: h, Body: []byte("this is not valid payload for the given signature"), Now: now}), verify.ErrSignatureMismatch)
	bad := h.Clone()
	bad.Set("X-Twilio-Email-Event-Webhook-Timestamp", "1588788368")
	checkErr(t, v.Verify(&verify.Request{Header: bad, Body: body, Now: now}), verify.ErrSignatureMismatch)
}

// TestTwilioParameterOrder checks that a form whose names prefix one
// another (From, FromCity) verifies whether Twilio's signer sorted the
// names (its docs, Python and Node libraries) or the name+value strings
// (its Go library).
func TestTwilioParameterOrder(t *testing.T) {
	t.Parallel()
	const u = "https://hooks.example/e/twilio"
	form := url.Values{"From": {"Zed"}, "FromCity": {"SAN FRANCISCO"}, "Body": {"hi"}}
	mac := func(parts ...string) string {
		m := hmac.New(sha1.New, []byte("tok"))
		m.Write([]byte(u + strings.Join(parts, "")))
		return base64Std(m.Sum(nil))
	}
	v := mustNew(t, verify.Config{Type: "twilio", Secret: "tok"})
	for name, sig := range map[string]string{
		"by name":           mac("Bodyhi", "FromZed", "FromCitySAN FRANCISCO"),
		"by name and value": mac("Bodyhi", "FromCitySAN FRANCISCO", "FromZed"),
	} {
		h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "X-Twilio-Signature": {sig}}
		if err := v.Verify(&verify.Request{Header: h, Body: []byte(form.Encode()), URL: u}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
