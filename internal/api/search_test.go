package api_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestEventSearch searches events by body path and text through the API,
// on both drivers: exact numbers, nested paths and arrays, form bodies,
// text, paging and the list's filters combined.
func TestEventSearch(t *testing.T) {
	t.Parallel()
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			b := setup(t, &setupOpts{token: testToken, postgres: driver == "postgres"})
			ev := func(source, typ, body string, at time.Duration, ct string) string {
				return ingest(t, b.store, ingestOpts{source: source, typ: typ, body: body, at: t0.Add(at),
					header: http.Header{"Content-Type": {ct}}}).EventID
			}
			const js = "application/json"
			e1 := ev("stripe", "charge.succeeded", `{"data":{"object":{"customer":"cus_123","amount":9007199254740993,"items":[{"sku":"A"},{"sku":"B"}]}}}`, 0, js)
			e2 := ev("stripe", "charge.succeeded", `{"data":{"object":{"customer":"cus_456","amount":9007199254740992}}}`, time.Minute, js)
			e3 := ev("stripe", "charge.refunded", `{"data":{"object":{"customer":"cus_123","amount":100,"reason":"Duplicate charge"}}}`, 2*time.Minute, js)
			e4 := ev("twilio", "sms", `Body=refund+please&From=%2B15550001&customer=cus_123`, 3*time.Minute, "application/x-www-form-urlencoded")
			e5 := ev("stripe", "charge.succeeded", `{"data":{"object":{"customer":"cus_123","amount":7}}}`, 4*time.Minute, js)

			search := func(t *testing.T, query string) ([]string, string) {
				t.Helper()
				l := must[page[struct {
					ID string `json:"id"`
				}]](t, b.do(t, "GET", "/api/v1/events?"+query, nil), http.StatusOK)
				var ids []string
				for _, row := range l.Data {
					ids = append(ids, row.ID)
				}
				return ids, l.NextCursor
			}
			q := func(kv ...string) string {
				v := url.Values{}
				for i := 0; i < len(kv); i += 2 {
					v.Add(kv[i], kv[i+1])
				}
				return v.Encode()
			}
			for _, tt := range []struct {
				name  string
				query string
				want  []string
			}{
				{"exact 2^53+1", q("where", "data.object.amount=9007199254740993"), []string{e1}},
				{"exact 2^53", q("where", "data.object.amount=9007199254740992"), []string{e2}},
				{"nested string", q("where", "data.object.customer=cus_123"), []string{e5, e3, e1}},
				{"array index", q("where", "data.object.items[1].sku=B"), []string{e1}},
				{"array past the end", q("where", "data.object.items[2].sku=B"), nil},
				{"form field", q("where", `From="+15550001"`), []string{e4}},
				{"two conditions", q("where", "data.object.customer=cus_123", "where", "data.object.amount=100"), []string{e3}},
				{"text", q("q", "REFUND"), []string{e4}},
				{"text miss", q("q", "chargeback"), nil},
				{"text and where", q("q", "duplicate", "where", "data.object.customer=cus_123"), []string{e3}},
				{"with source", q("where", "customer=cus_123", "source", "twilio"), []string{e4}},
				{"with type", q("where", "data.object.customer=cus_123", "type", "charge.succeeded"), []string{e5, e1}},
				{"with time range", q("where", "data.object.customer=cus_123", "since", t0.Add(time.Minute).Format(time.RFC3339),
					"until", t0.Add(4*time.Minute).Format(time.RFC3339)), []string{e3}},
				{"with status", q("where", "data.object.customer=cus_123", "status", "routed"), nil},
			} {
				t.Run(tt.name, func(t *testing.T) {
					got, next := search(t, tt.query)
					if !slices.Equal(got, tt.want) || next != "" {
						t.Errorf("%s: got %v (next %q), want %v and no next page", tt.query, got, next, tt.want)
					}
				})
			}

			t.Run("paging", func(t *testing.T) {
				var got []string
				cursor := ""
				for range 4 {
					query := q("where", "data.object.customer=cus_123", "limit", "2")
					if cursor != "" {
						query += "&cursor=" + cursor
					}
					ids, next := search(t, query)
					got = append(got, ids...)
					if next == "" {
						break
					}
					cursor = next
				}
				if want := []string{e5, e3, e1}; !slices.Equal(got, want) {
					t.Errorf("pages of 2: %v, want %v", got, want)
				}
			})

			t.Run("bad where", func(t *testing.T) {
				for _, tt := range []struct{ where, want string }{
					{"data..object=1", "empty key"},
					{"data.object.customer", "not path=value"},
					{"items[01].sku=B", "leading zero"},
					{`a={"b":1}`, "object or array"},
					{`a="open`, "not a JSON string"},
				} {
					r := b.do(t, "GET", "/api/v1/events?"+q("where", tt.where), nil)
					if r.status != http.StatusBadRequest {
						t.Errorf("where=%s: status %d, want 400", tt.where, r.status)
						continue
					}
					if msg := r.errorMessage(t); !strings.Contains(msg, "where") || !strings.Contains(msg, tt.want) {
						t.Errorf("where=%s: error %q, want it to name where and say %q", tt.where, msg, tt.want)
					}
				}
				r := b.do(t, "GET", "/api/v1/events?"+strings.Repeat("where=a%3D1&", 9), nil)
				if r.status != http.StatusBadRequest || !strings.Contains(r.errorMessage(t), "at most 8") {
					t.Errorf("9 conditions: %d %s", r.status, r.body)
				}
			})
		})
	}
}
