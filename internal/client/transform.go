package client

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/mailroomhq/mailroom/internal/preview"
)

// TransformTest is the answer of a transformation test: the request an
// attempt would send before the transformation (Input), what the handler
// returned (Output, nil when it failed), its console log and its error.
type TransformTest struct {
	preview.Result
	Raw json.RawMessage `json:"-"`
}

// TransformTest runs the transformation of connection on the stored event
// eventID without delivering anything; script, if not empty, is tried
// instead of the connection's own.
func (c *Client) TransformTest(ctx context.Context, connection, eventID, script string) (*TransformTest, error) {
	body := map[string]string{"event_id": eventID}
	if script != "" {
		body["transform"] = script
	}
	var out TransformTest
	// Call escapes the path itself: the id goes in as it is.
	raw, err := c.Call(ctx, http.MethodPost, "/connections/"+connection+"/transform/test", nil, body, &out)
	if err != nil {
		return nil, err
	}
	out.Raw = raw
	return &out, nil
}
