package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/mailroomhq/mailroom/internal/trigger"
)

// paymentLink is a link of the fake payments API.
type paymentLink struct {
	ID       string `json:"id"`
	URL      string `json:"url"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	Status   string `json:"status"` // open or paid
}

// fakePay is a tiny Stripe-like payments API: it creates payment links,
// and when "the customer pays" (POST /v1/payment_links/{id}/pay) it sends
// a Stripe-signed checkout.session.completed webhook to WebhookURL.
type fakePay struct {
	webhookURL string
	secret     string
	client     *http.Client

	mu    sync.Mutex
	links map[string]*paymentLink
}

func newFakePay(webhookURL, secret string) *fakePay {
	return &fakePay{webhookURL: webhookURL, secret: secret, client: &http.Client{}, links: map[string]*paymentLink{}}
}

func (p *fakePay) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/payment_links", p.create)
	mux.HandleFunc("POST /v1/payment_links/{id}/pay", p.pay)
	mux.HandleFunc("GET /pay/{id}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "Pay link %s: POST /v1/payment_links/%s/pay to simulate the customer paying.\n", r.PathValue("id"), r.PathValue("id"))
	})
	return mux
}

func (p *fakePay) create(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Amount   int64  `json:"amount"`
		Currency string `json:"currency"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Amount <= 0 {
		http.Error(w, `{"error":"want {\"amount\": cents > 0, \"currency\": \"usd\"}"}`, http.StatusBadRequest)
		return
	}
	if in.Currency == "" {
		in.Currency = "usd"
	}
	id := "plink_" + strings.ToLower(rand.Text()[:16])
	l := &paymentLink{ID: id, URL: "http://" + r.Host + "/pay/" + id, Amount: in.Amount, Currency: in.Currency, Status: "open"}
	p.mu.Lock()
	p.links[id] = l
	p.mu.Unlock()
	writeJSON(w, http.StatusCreated, l)
}

// pay marks the link paid and sends the webhook, as the provider would.
func (p *fakePay) pay(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	l := p.links[r.PathValue("id")]
	var link paymentLink
	if l != nil {
		l.Status = "paid"
		link = *l
	}
	p.mu.Unlock()
	if l == nil {
		http.Error(w, `{"error":"no such payment link"}`, http.StatusNotFound)
		return
	}
	status, err := p.sendCompleted(r.Context(), link)
	if err != nil {
		http.Error(w, fmt.Sprintf(`{"error":%q}`, err.Error()), http.StatusBadGateway)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"link": link, "webhook_status": status})
}

// sendCompleted POSTs a signed checkout.session.completed for link.
func (p *fakePay) sendCompleted(ctx context.Context, link paymentLink) (int, error) {
	wh, err := trigger.Build("stripe", "checkout.session.completed", &trigger.Options{Secret: p.secret, Set: []string{
		"data.object.payment_link=" + link.ID,
		"data.object.amount_total=" + strconv.FormatInt(link.Amount, 10),
		"data.object.amount_subtotal=" + strconv.FormatInt(link.Amount, 10),
		"data.object.currency=" + link.Currency,
	}})
	if err != nil {
		return 0, fmt.Errorf("build webhook: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.webhookURL, bytes.NewReader(wh.Body))
	if err != nil {
		return 0, fmt.Errorf("webhook URL %q: %w", p.webhookURL, err)
	}
	req.Header = wh.Header
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("send webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("webhook answered %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
