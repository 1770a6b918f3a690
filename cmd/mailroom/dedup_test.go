package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// dedupConfig is a source deduplicating on body.id, without verification.
const dedupConfig = `
storage: sqlite://%s/mailroom.db
sources:
  - name: app
    verify: {type: none}
    dedup: {key: 'body.id'}
`

// ingestAnswer is what POST /e/{source} answers.
type ingestAnswer struct {
	RequestID  string `json:"request_id"`
	EventID    string `json:"event_id"`
	Duplicate  bool   `json:"duplicate"`
	DedupError string `json:"dedup_error"`
}

// postBody sends body to source with contentType and returns the answer.
func postBody(t *testing.T, addr, source, contentType, body string) ingestAnswer {
	t.Helper()
	resp, err := http.Post("http://"+addr+"/e/"+source, contentType, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a ingestAnswer
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %d", body, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatal(err)
	}
	return a
}

// TestDedupKeyIsTheNumbersText sends two ids that are one float64 apart
// only in their text (2^53 and 2^53+1): they are two events, each keyed by
// its exact text, and a retry of the second is its duplicate.
func TestDedupKeyIsTheNumbersText(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	srv := start(t, binary(t), writeYAML(t, dir, fmt.Sprintf(dedupConfig, dir)))

	first := postBody(t, srv.addr, "app", "application/json", `{"id":9007199254740992}`)
	second := postBody(t, srv.addr, "app", "application/json", `{"id":9007199254740993}`)
	if first.Duplicate || second.Duplicate || first.EventID == second.EventID {
		t.Fatalf("two distinct ids merged: %+v then %+v", first, second)
	}
	retry := postBody(t, srv.addr, "app", "application/json", `{"id":9007199254740993}`)
	if !retry.Duplicate || retry.EventID != second.EventID {
		t.Errorf("retry of the second: %+v, want a duplicate of %s", retry, second.EventID)
	}
	for id, key := range map[string]string{first.EventID: "9007199254740992", second.EventID: "9007199254740993"} {
		var ev struct {
			DedupKey string `json:"dedup_key"`
		}
		getJSON(t, "http://"+srv.addr+"/api/v1/events/"+id, &ev)
		if ev.DedupKey != key {
			t.Errorf("event %s: dedup_key %q, want %q", id, ev.DedupKey, key)
		}
	}
}

// TestDedupErrorVisible runs the real binary with a source keyed on
// body.id and a Twilio-like form source keyed on body.MessageSid. JSON sent
// with curl's default form content type, and a real form, are deduplicated.
// A request whose key cannot be computed is accepted, and says why in its
// answer, on its event in the API, in a per-source metric and in a warning.
func TestDedupErrorVisible(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	srv := start(t, binary(t), writeYAML(t, dir, fmt.Sprintf(dedupConfig, dir)+`
  - name: twilio
    verify: {type: none}
    dedup: {key: 'body.MessageSid'}
`))
	const form = "application/x-www-form-urlencoded"

	for _, tt := range []struct{ source, body string }{
		{"app", `{"id":"a"}`}, // curl -d '{"id":"a"}'
		{"twilio", "MessageSid=SM1&Body=hello"},
	} {
		first := postBody(t, srv.addr, tt.source, form, tt.body)
		again := postBody(t, srv.addr, tt.source, form, tt.body)
		if first.Duplicate || !again.Duplicate || again.EventID != first.EventID || first.DedupError != "" {
			t.Errorf("%s %s sent twice as a form: %+v then %+v, want one event and a duplicate", tt.source, tt.body, first, again)
		}
	}

	var events []string
	for range 2 {
		a := postBody(t, srv.addr, "twilio", form, "Body=no+sid")
		if a.Duplicate || !strings.Contains(a.DedupError, "MessageSid") {
			t.Fatalf("form without MessageSid: %+v, want accepted with a dedup_error", a)
		}
		events = append(events, a.EventID)
	}
	var ev struct {
		DedupKey   string `json:"dedup_key"`
		DedupError string `json:"dedup_error"`
	}
	getJSON(t, "http://"+srv.addr+"/api/v1/events/"+events[1], &ev)
	if ev.DedupKey != "" || !strings.Contains(ev.DedupError, "no such key: MessageSid") {
		t.Errorf("event %s: %+v, want its dedup_error", events[1], ev)
	}
	resp, err := http.Get("http://" + srv.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `mailroom_dedup_errors_total{project="default",source="twilio"} 2`) {
		t.Errorf("/metrics lacks mailroom_dedup_errors_total{source=\"twilio\"} 2:\n%s", metrics)
	}
	waitUntil(t, "the dedup warning in the log", func() bool {
		return strings.Contains(srv.logs.String(), `level=WARN msg="ingest: dedup key not computed`)
	})
}

// TestTaskMatchesIntegersExactly creates a wait task through the API for
// id 2^53+1 after an event with id 2^53 (the same float64) arrived: the
// task completes with the right event.
func TestTaskMatchesIntegersExactly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	srv := start(t, binary(t), writeYAML(t, dir, fmt.Sprintf(dedupConfig, dir)))
	postBody(t, srv.addr, "app", "application/json", `{"id":9007199254740992}`)
	want := postBody(t, srv.addr, "app", "application/json", `{"id":9007199254740993}`).EventID

	resp, err := http.Post("http://"+srv.addr+"/api/v1/tasks", "application/json",
		strings.NewReader(`{"source":"app","match":{"id":9007199254740993},"timeout":"1m"}`))
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ ID string }
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create task: %d", resp.StatusCode)
	}
	var got struct {
		Status  string `json:"status"`
		EventID string `json:"event_id"`
	}
	for range 10 {
		getJSON(t, "http://"+srv.addr+"/api/v1/tasks/"+created.ID+"?wait=5s", &got)
		if got.Status != "working" {
			break
		}
	}
	if got.Status != "completed" || got.EventID != want {
		t.Errorf("task %s by %s, want completed by %s", got.Status, got.EventID, want)
	}
}
