package metrics_test

import (
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/metrics"
	"github.com/mailroomhq/mailroom/internal/store"
	"github.com/mailroomhq/mailroom/internal/store/sqlite/sqlitetest"
)

// observabilityDoc holds the table of every series mailroom serves.
const observabilityDoc = "../../docs/observability.md"

// docRow is a row of the metrics table: | `name` | type | `label`, … | meaning |
var docRow = regexp.MustCompile("^\\| `(mailroom_[a-z_]+)` \\| ([a-z]*) \\|([^|]*)\\|")

// TestObservabilityDoc checks the metrics table of docs/observability.md
// against the registry: every mailroom_ series the registry serves is a row
// with its type and labels, and every row is a series it serves, so that a
// metric cannot be renamed, added or relabelled without the doc.
func TestObservabilityDoc(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := sqlitetest.Open(t, nil)
	if err := s.DestinationUpsert(ctx, &store.Destination{Name: "billing", URL: "http://127.0.0.1:9/"}); err != nil {
		t.Fatal(err)
	}
	m := metrics.New(s, &metrics.Options{NoRuntimeCollectors: true})
	// One observation each, so that every vector has a series.
	m.ObserveIngest("stripe", metrics.OutcomeAccepted, time.Millisecond)
	m.ObserveIngest("stripe", metrics.OutcomeDuplicate, time.Millisecond)
	m.ObserveDedupError("stripe")
	m.ObserveAttempt(store.Attempt{Destination: "billing", DurationMS: 3}, "succeeded")
	m.ObserveCircuit("billing", "opened", store.CircuitState{})
	m.ObserveTaskCompletion(time.Second)
	m.ObserveConfigReload("success", time.Now())

	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]string{} // name -> "type | labels"
	for _, mf := range mfs {
		var labels []string
		for _, l := range mf.GetMetric()[0].GetLabel() {
			labels = append(labels, l.GetName())
		}
		slices.Sort(labels)
		served[mf.GetName()] = strings.ToLower(mf.GetType().String()) + " | " + strings.Join(labels, ", ")
	}
	if _, ok := served["mailroom_build_info"]; !ok || len(served) < 10 {
		t.Fatalf("the registry serves %d families (%v); is the setup broken?", len(served), served)
	}

	raw, err := os.ReadFile(observabilityDoc)
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]string{}
	for i, line := range strings.Split(string(raw), "\n") {
		row := docRow.FindStringSubmatch(line)
		if row == nil {
			continue
		}
		var labels []string
		for _, l := range strings.Split(row[3], ",") {
			if l = strings.Trim(strings.TrimSpace(l), "`"); l != "" {
				labels = append(labels, l)
			}
		}
		slices.Sort(labels)
		if _, dup := documented[row[1]]; dup {
			t.Errorf("%s:%d: %s has a second row", observabilityDoc, i+1, row[1])
		}
		documented[row[1]] = row[2] + " | " + strings.Join(labels, ", ")
	}
	for name, want := range served {
		got, ok := documented[name]
		switch {
		case !ok:
			t.Errorf("%s is served but has no row in the metrics table of %s", name, observabilityDoc)
		case got != want:
			t.Errorf("%s: the doc says %q (type | labels), the registry serves %q", name, got, want)
		}
	}
	for name := range documented {
		if _, ok := served[name]; !ok {
			t.Errorf("%s has a row in %s but is not served", name, observabilityDoc)
		}
	}
}
