package health_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mailroomhq/mailroom/internal/buildinfo"
	"github.com/mailroomhq/mailroom/internal/health"
	"github.com/mailroomhq/mailroom/internal/store/sqlite/sqlitetest"
)

// TestProbes: /healthz answers with the build whatever storage does;
// /readyz answers 200 while the store can write and 503 with the reason
// once it cannot (here, closed).
func TestProbes(t *testing.T) {
	t.Parallel()
	st := sqlitetest.Open(t, nil)
	mux := http.NewServeMux()
	health.Register(mux, st, &health.Options{Build: buildinfo.Info{Version: "v1.2.3", Commit: "abc"}})
	get := func(path string) (int, map[string]string) {
		t.Helper()
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		var body map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("%s: %q (%s): %v", path, rec.Body, rec.Header().Get("Content-Type"), err)
		}
		return rec.Code, body
	}
	if code, body := get("/healthz"); code != http.StatusOK || body["status"] != "ok" || body["version"] != "v1.2.3" || body["commit"] != "abc" {
		t.Errorf("/healthz = %d %v", code, body)
	}
	if code, body := get("/readyz"); code != http.StatusOK || body["status"] != "ready" {
		t.Errorf("/readyz on a writable store = %d %v", code, body)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || body["status"] != "unavailable" || body["error"] == "" {
		t.Errorf("/readyz on a closed store = %d %v, want 503 with the reason", code, body)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz on a closed store = %d, want 200 (the process is up)", code)
	}
}
