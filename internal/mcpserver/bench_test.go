package mcpserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

// BenchmarkWebhookToNotification measures, with 10,000 other waits open on
// the same source, the time from sending a signed webhook (including its
// durable ingest) to receiving notifications/tasks for the task it
// completes, over real HTTP and SQLite. It reports p50 and p99.
//
//	go test -run '^$' -bench WebhookToNotification -benchtime 200x ./internal/mcpserver
func BenchmarkWebhookToNotification(b *testing.B) {
	for _, open := range []int{0, 10_000} {
		b.Run(fmt.Sprintf("open=%d", open), func(b *testing.B) { benchNotify(b, open) })
	}
}

func benchNotify(b *testing.B, open int) {
	e := newEnv(b, "", nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range open {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			args, _ := json.Marshal(waitArgs(fmt.Sprintf("plink_bg_%d", i)))
			err := e.store.TaskCreate(ctx, &store.Task{
				ID: fmt.Sprintf("task_bg_%05d", i), Owner: "local", Protocol: "2026-07-28", Tool: "wait_for_event",
				Arguments: args, TTL: time.Hour,
				Wait: &store.TaskWait{Source: "stripe", Type: "checkout.session.completed", Since: time.Now(), Deadline: time.Now().Add(time.Hour)},
			})
			if err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := e.tasks.Reload(ctx); err != nil {
		b.Fatal(err)
	}
	if n := e.tasks.Len(); n < open {
		b.Fatalf("%d waits indexed, want %d", n, open)
	}
	c := &rpcClient{t: e.t, url: e.url, modern: true, tasksExt: true}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		link := fmt.Sprintf("plink_bench_%d", i)
		created := c.call("tools/call", map[string]any{"name": "wait_for_event", "arguments": waitArgs(link)})
		taskID := created.Result["taskId"].(string)
		lctx, cancel := context.WithCancel(ctx)
		resp, _ := c.post(lctx, "subscriptions/listen", map[string]any{"notifications": map[string]any{"taskIds": []string{taskID}}}, false)
		stream := sseMessages(resp)
		waitFor(e.t, stream, "ack", func(m rpcResponse) bool { return m.Method == "notifications/tasks" })
		b.StartTimer()
		start := time.Now()
		e.sendStripe(fmt.Sprintf("evt_bench_%d", i), "checkout.session.completed", link)
		waitFor(e.t, stream, "completion", func(m rpcResponse) bool {
			return m.Method == "notifications/tasks" && m.Params["status"] == "completed"
		})
		lat = append(lat, time.Since(start))
		b.StopTimer()
		cancel()
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50_ms")
	b.ReportMetric(pct(0.99), "p99_ms")
	b.ReportMetric(float64(open), "open_waits")
}
