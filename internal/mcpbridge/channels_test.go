package mcpbridge

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestChannelEventKeepsNumbers checks that an event read from a source's
// resource is pushed with its body as sent: 2^53+1 is not rounded.
func TestChannelEventKeepsNumbers(t *testing.T) {
	text := `{"events":[{"event_id":"evt_1","source":"stripe","type":"t","body":{"id":9007199254740993,"amount":1.50}}]}`
	var out struct {
		Events []channelEvent `json:"events"`
	}
	if err := json.Unmarshal([]byte(text), &out); err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(out.Events[0].Body)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), `"id":9007199254740993`) || !strings.Contains(string(body), `"amount":1.50`) {
		t.Errorf("pushed body %s, want the numbers as sent", body)
	}
}
