package config_test

import (
	"strings"
	"testing"

	"github.com/mailroomhq/mailroom/internal/config"
)

func TestIngestRejectedBodyBytes(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse([]byte("ingest:\n  rejected_body_bytes: 1024\n"), "m.yaml", realOptions(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Ingest.RejectedBodyBytes != 1024 {
		t.Errorf("ingest.rejected_body_bytes = %d, want 1024", cfg.Ingest.RejectedBodyBytes)
	}
	for _, bad := range []string{"-1", "1048577"} {
		_, err := config.Parse([]byte("listen: 127.0.0.1:8080\ningest:\n  rejected_body_bytes: "+bad+"\n"), "m.yaml", realOptions(t, nil))
		if want := "m.yaml:3: ingest.rejected_body_bytes: " + bad + " is out of range"; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("rejected_body_bytes %s: err = %v, want %q", bad, err, want)
		}
	}
}
