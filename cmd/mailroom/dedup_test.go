package main

import (
	"encoding/json"
	"fmt"
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
	RequestID string `json:"request_id"`
	EventID   string `json:"event_id"`
	Duplicate bool   `json:"duplicate"`
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
