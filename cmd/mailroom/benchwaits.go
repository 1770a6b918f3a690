package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/mailroomhq/mailroom/internal/bench"
	"github.com/mailroomhq/mailroom/internal/store"
)

// waitsReport is what `mailroom bench --waits N` measured: N waits that
// never match stay open on the loaded source, and probe waits, each
// created before its webhook is sent during the load, measure the time
// from sending a webhook to the task it completes being completed.
type waitsReport struct {
	// Open is the number of waits open during the load (N plus the
	// probes).
	Open int `json:"open"`
	// CreatePerSecond is how fast the API created them before the load.
	CreatePerSecond float64 `json:"create_per_second"`
	// Probes counts probe webhooks acknowledged; Completed the probe tasks
	// completed by them.
	Probes    int `json:"probes"`
	Completed int `json:"completed"`
	// Completion is from a probe webhook's send to its task's completion
	// (the task's updated_at, stamped when correlation finished it).
	Completion bench.Percentiles `json:"completion"`
}

// waitSet is the waits a bench run opened.
type waitSet struct {
	probeIDs   []string // the body ids the probe waits match, in order
	probeTasks []string // the task of each probe id
	rep        *waitsReport
}

// apiCreateTask is the body of POST /api/v1/tasks the bench sends.
type apiCreateTask struct {
	Source  string         `json:"source"`
	Match   map[string]any `json:"match"`
	Timeout string         `json:"timeout"`
}

// openWaits creates n waits that never match and probes waits that each
// match one probe id, all on source, through the admin API at base, with
// a few requests in flight.
func openWaits(ctx context.Context, base, source, runID string, n, probes int, timeout time.Duration) (*waitSet, error) {
	ws := &waitSet{rep: &waitsReport{Open: n + probes}}
	ws.probeIDs = make([]string, probes)
	ws.probeTasks = make([]string, probes)
	for i := range ws.probeIDs {
		ws.probeIDs[i] = "probe_" + runID + "_" + strconv.Itoa(i)
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}, Timeout: time.Minute}
	defer hc.CloseIdleConnections()
	create := func(id string) (string, error) {
		b, _ := json.Marshal(apiCreateTask{Source: source, Match: map[string]any{"id": id}, Timeout: timeout.String()})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/tasks", bytes.NewReader(b))
		if err != nil {
			return "", err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return "", fmt.Errorf("create wait: %w", err)
		}
		defer resp.Body.Close()
		var t struct {
			ID    string `json:"id"`
			Error string `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&t)
		if resp.StatusCode != http.StatusCreated || t.ID == "" {
			return "", fmt.Errorf("create wait: %s %s", resp.Status, t.Error)
		}
		return t.ID, nil
	}
	start := time.Now()
	jobs := make(chan int)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range 8 {
		wg.Go(func() {
			for i := range jobs {
				id := "nowait_" + runID + "_" + strconv.Itoa(i)
				if i >= n {
					id = ws.probeIDs[i-n]
				}
				tid, err := create(id)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if i >= n {
					ws.probeTasks[i-n] = tid
				}
				mu.Unlock()
			}
		})
	}
	for i := range n + probes {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	ws.rep.CreatePerSecond = float64(n+probes) / time.Since(start).Seconds()
	return ws, nil
}

// measure reads the probe tasks and fills in the completion times: sent
// holds when each probe webhook was sent (zero if not acknowledged). It
// waits up to within for tasks still open.
func (ws *waitSet) measure(ctx context.Context, st store.Store, sent []time.Time, within time.Duration) error {
	deadline := time.Now().Add(within)
	var lat []time.Duration
	for i, tid := range ws.probeTasks {
		if sent[i].IsZero() {
			continue
		}
		ws.rep.Probes++
		for {
			t, err := st.TaskGet(ctx, tid, time.Now())
			if err != nil {
				return fmt.Errorf("read probe task %s: %w", tid, err)
			}
			if t.Status == store.TaskCompleted {
				ws.rep.Completed++
				lat = append(lat, t.UpdatedAt.Sub(sent[i]))
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	ws.rep.Completion = bench.Latencies(lat)
	return nil
}
