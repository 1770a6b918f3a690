package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/api"
	"github.com/mailroomhq/mailroom/internal/catalog"
	"github.com/mailroomhq/mailroom/internal/deliver"
	"github.com/mailroomhq/mailroom/internal/ingest"
	"github.com/mailroomhq/mailroom/internal/route"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlite"
	"github.com/mailroomhq/mailroom/internal/store/sqlite/sqlitetest"
)

const cliToken = "cli-test-token"

// cliBundle is a real server (SQLite, ingest, dispatcher, admin API) on
// loopback, with one event delivered to ok and dead at bad.
type cliBundle struct {
	url     string
	store   *sqlite.Store
	eventID string
}

func setupCLI(t *testing.T) *cliBundle {
	t.Helper()
	ctx := context.Background()
	s := sqlitetest.Open(t, nil)
	ok := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(ok.Close)
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "payment service down", http.StatusInternalServerError)
	}))
	t.Cleanup(bad.Close)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.SourceUpsert(ctx, &store.Source{Name: "stripe"}))
	must(s.DestinationUpsert(ctx, &store.Destination{Name: "ok", URL: ok.URL}))
	must(s.DestinationUpsert(ctx, &store.Destination{Name: "bad", URL: bad.URL, Retry: store.RetryPolicy{MaxAttempts: 1}}))
	must(s.ConnectionUpsert(ctx, &store.Connection{Source: "stripe", Destination: "ok"}))
	must(s.ConnectionUpsert(ctx, &store.Connection{Source: "stripe", Destination: "bad"}))
	must(s.TaskCreate(ctx, &store.Task{ID: "task_pay_1", Owner: "agent-7", Tool: "pay", Wait: &store.TaskWait{Source: "stripe", Type: "payment_intent.succeeded"}}))

	compiler, err := route.NewCompiler()
	must(err)
	cat := catalog.New(s, compiler, nil)
	must(cat.Load(ctx))
	mux := http.NewServeMux()
	ingest.New(s, cat, nil).Register(mux)
	api.New(s, cat, &api.Options{Token: cliToken}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- deliver.New(s, &deliver.Options{PollInterval: 10 * time.Millisecond}).Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })

	resp, err := http.Post(srv.URL+"/e/stripe", "application/json", strings.NewReader(`{"id":"evt_pay_X","type":"payment_intent.succeeded"}`))
	must(err)
	var ack ingest.Response
	must(json.NewDecoder(resp.Body).Decode(&ack))
	resp.Body.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ds, err := s.DeliveryList(ctx, &store.DeliveryListParams{EventID: ack.EventID})
		must(err)
		settled := 0
		for _, d := range ds {
			if d.Status != store.DeliveryPending {
				settled++
			}
		}
		if settled == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("deliveries did not settle")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return &cliBundle{url: srv.URL, store: s, eventID: ack.EventID}
}

// run runs one mailroom command in process against the bundle's server
// and returns its output and exit code.
func (b *cliBundle) run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := newRootCommand()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	full := append([]string{}, args...)
	if len(args) > 0 && args[0] != "serve" {
		full = append(full, "--server", b.url)
		if !hasFlag(args, "--token") {
			full = append(full, "--token", cliToken)
		}
	}
	cmd.SetArgs(full)
	err := cmd.ExecuteContext(context.Background())
	if err != nil {
		errOut.WriteString(err.Error())
	}
	return out.String(), errOut.String(), exitCode(err)
}

func hasFlag(args []string, flag string) bool {
	for _, a := range args {
		if a == flag || strings.HasPrefix(a, flag+"=") {
			return true
		}
	}
	return false
}

// columns splits a table line into its cells.
func columns(line string) []string {
	return regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(line), -1)
}

// findRow returns the cells of the first line of a table holding s.
func findRow(t *testing.T, table, s string) []string {
	t.Helper()
	for _, line := range strings.Split(table, "\n") {
		if strings.Contains(line, s) {
			return columns(line)
		}
	}
	t.Fatalf("no row with %q in:\n%s", s, table)
	return nil
}

func TestCLI(t *testing.T) {
	t.Parallel()
	b := setupCLI(t)
	ok := func(t *testing.T, args ...string) string {
		t.Helper()
		out, errOut, code := b.run(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d, stderr %s", args, code, errOut)
		}
		return out
	}
	deadID := func(t *testing.T) string {
		ds, err := b.store.DeliveryList(context.Background(), &store.DeliveryListParams{Destination: "bad"})
		if err != nil || len(ds) == 0 {
			t.Fatalf("no delivery to bad: %v", err)
		}
		return ds[len(ds)-1].ID
	}

	t.Run("EventsList", func(t *testing.T) {
		out := ok(t, "events", "list", "--source", "stripe", "--since", "1h")
		if got := columns(strings.SplitN(out, "\n", 2)[0]); strings.Join(got, "|") != "ID|RECEIVED|SOURCE|TYPE|STATUS|DELIVERIES" {
			t.Errorf("header = %q", got)
		}
		row := findRow(t, out, b.eventID)
		if row[2] != "stripe" || row[4] != "routed" || row[5] != "2" {
			t.Errorf("row = %q", row)
		}
	})
	t.Run("Projects", func(t *testing.T) {
		out := ok(t, "projects")
		if got := columns(strings.SplitN(out, "\n", 2)[0]); strings.Join(got, "|") != "PROJECT|DECLARED|INGEST RATE|MAX DESTINATIONS|RETENTION|SOURCES|DESTINATIONS|CONNECTIONS" {
			t.Errorf("header = %q", got)
		}
		if row := findRow(t, out, "default"); row[1] != "false" || row[2] != "-" || row[5] == "0" {
			t.Errorf("row = %q", row)
		}
	})
	t.Run("EventsSearch", func(t *testing.T) {
		out := ok(t, "events", "list", "--where", "id=evt_pay_X", "--where", `type="payment_intent.succeeded"`, "--search", "PAYMENT_INTENT")
		if row := findRow(t, out, b.eventID); row[2] != "stripe" {
			t.Errorf("row = %q", row)
		}
		for _, args := range [][]string{{"--where", "id=evt_pay_Y"}, {"--search", "refund"}, {"--where", "id=evt_pay_X", "--search", "refund"}} {
			out := ok(t, append([]string{"events", "list"}, args...)...)
			if strings.Contains(out, b.eventID) {
				t.Errorf("%v lists %s:\n%s", args, b.eventID, out)
			}
		}
		_, errOut, code := b.run(t, "events", "list", "--where", "id..x=1")
		if code != exitUsage || !strings.Contains(errOut, "where") || !strings.Contains(errOut, "empty key") {
			t.Errorf("bad --where: exit %d, stderr %q; want %d and the path's error", code, errOut, exitUsage)
		}
	})
	t.Run("EventsListJSON", func(t *testing.T) {
		var page struct {
			Data []store.Event `json:"data"`
		}
		if err := json.Unmarshal([]byte(ok(t, "events", "list", "--json")), &page); err != nil {
			t.Fatal(err)
		}
		if len(page.Data) != 1 || page.Data[0].ID != b.eventID {
			t.Errorf("json page = %+v", page)
		}
	})
	t.Run("EventsShowSaysWhyItFailed", func(t *testing.T) {
		out := ok(t, "events", "show", b.eventID)
		for _, want := range []string{"Event:", b.eventID, "Status:    routed", `"id": "evt_pay_X"`} {
			if !strings.Contains(out, want) {
				t.Errorf("show lacks %q:\n%s", want, out)
			}
		}
		row := findRow(t, out, " bad ")
		if row[2] != "dead" || row[3] != "1" || row[4] != "500" {
			t.Errorf("bad delivery row = %q", row)
		}
	})
	t.Run("DeliveriesListAndShow", func(t *testing.T) {
		out := ok(t, "deliveries", "list", "--destination", "bad", "--status", "dead")
		id := deadID(t)
		if row := findRow(t, out, id); row[3] != "bad" || row[4] != "dead" {
			t.Errorf("row = %q", row)
		}
		out = ok(t, "deliveries", "show", id)
		row := findRow(t, out, "payment service down")
		if row[0] != "1" || row[3] != "500" {
			t.Errorf("attempt row = %q", row)
		}
	})
	t.Run("TasksListAndShow", func(t *testing.T) {
		out := ok(t, "tasks", "list", "--open")
		if row := findRow(t, out, "task_pay_1"); row[1] != "agent-7" || row[3] != "working" {
			t.Errorf("row = %q", row)
		}
		out = ok(t, "tasks", "show", "task_pay_1")
		if !strings.Contains(out, "source stripe, type payment_intent.succeeded") {
			t.Errorf("show:\n%s", out)
		}
	})
	t.Run("ExitCodes", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			args []string
			code int
		}{
			{"UnknownEvent", []string{"events", "show", "evt_nope"}, exitNotFound},
			{"UnknownDelivery", []string{"deliveries", "retry", "dlv_nope"}, exitNotFound},
			{"UnknownTask", []string{"tasks", "show", "task_nope"}, exitNotFound},
			{"UnknownDestination", []string{"destinations", "pause", "nope"}, exitNotFound},
			{"RetryUnknownEvent", []string{"events", "retry", "evt_nope"}, exitNotFound},
			{"StatusServerRefuses", []string{"events", "list", "--status", "bogus"}, exitUsage},
			{"BadSince", []string{"events", "list", "--since", "yesterday"}, exitUsage},
			{"UnknownFlag", []string{"events", "list", "--colour"}, exitUsage},
			{"MissingArgument", []string{"events", "show"}, exitUsage},
			{"UnknownSubcommand", []string{"events", "frob"}, exitUsage},
			{"BulkRetryWithoutFilter", []string{"deliveries", "retry"}, exitUsage},
			{"IDAndFilters", []string{"deliveries", "retry", "dlv_x", "--destination", "bad"}, exitUsage},
			{"WrongToken", []string{"events", "list", "--token", "wrong"}, exitFailure},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, errOut, code := b.run(t, tt.args...)
				if code != tt.code {
					t.Errorf("exit %d, want %d; stderr %s", code, tt.code, errOut)
				}
				if errOut == "" {
					t.Error("no error message")
				}
			})
		}
	})
	t.Run("Unreachable", func(t *testing.T) {
		cmd := newRootCommand()
		cmd.SetArgs([]string{"events", "list", "--server", "http://127.0.0.1:1"})
		cmd.SetOut(&bytes.Buffer{})
		if code := exitCode(cmd.ExecuteContext(context.Background())); code != exitFailure {
			t.Errorf("exit %d, want %d", code, exitFailure)
		}
	})

	// The actions change state; they run after the reads above.
	t.Run("Actions", func(t *testing.T) {
		id := deadID(t)
		out := ok(t, "deliveries", "retry", id)
		if !strings.Contains(out, "delivery "+id+" to bad is pending") {
			t.Errorf("retry one: %s", out)
		}
		waitDead := func() {
			deadline := time.Now().Add(10 * time.Second)
			for {
				d, err := b.store.DeliveryGetByID(context.Background(), id)
				if err != nil {
					t.Fatal(err)
				}
				if d.Status == store.DeliveryDead && d.Attempts == 2 {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("retried delivery did not die again: %+v", d)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		waitDead()
		var res struct{ Retried int }
		if err := json.Unmarshal([]byte(ok(t, "deliveries", "retry", "--destination", "bad", "--json")), &res); err != nil || res.Retried != 1 {
			t.Errorf("bulk retry json: %+v %v", res, err)
		}
		out = ok(t, "destinations", "pause", "bad", "--reason", "incident 42")
		if strings.TrimSpace(out) != "destination bad paused: incident 42" {
			t.Errorf("pause: %q", out)
		}
		if d, _ := b.store.DestinationGet(context.Background(), "bad"); !d.Paused {
			t.Error("destination not paused in the store")
		}
		ok(t, "destinations", "resume", "bad")
		if d, _ := b.store.DestinationGet(context.Background(), "bad"); d.Paused {
			t.Error("destination still paused")
		}
		out = ok(t, "events", "replay", b.eventID)
		findRow(t, out, " ok ")
		findRow(t, out, " bad ")
		out = ok(t, "events", "retry", b.eventID, "--status", "succeeded")
		if !strings.HasPrefix(out, "retried ") {
			t.Errorf("events retry: %q", out)
		}
	})
}
