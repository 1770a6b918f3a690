package task

import (
	"context"
	"sync"
)

// job is one unit of correlation work: one wait against one event, or one
// page of a look-back. Each is bounded by the CEL cost limit of the
// filters it runs.
type job func(ctx context.Context)

// fairQueue schedules jobs round-robin over owners, one job per owner at a
// time. An owner with a thousand expensive jobs queued holds at most one
// worker and delays another owner's next job by at most one of its own,
// and an owner's jobs run in the order they were queued.
//
// It is safe for concurrent use.
type fairQueue struct {
	mu sync.Mutex
	// queued holds each owner's jobs in order.
	queued map[string][]job
	// ready lists, in turn order, the owners that have jobs queued and
	// none running.
	ready []string
	// running marks owners with a job on a worker.
	running map[string]bool
	// wake has a token when ready may be non-empty.
	wake chan struct{}
}

func newFairQueue() *fairQueue {
	return &fairQueue{queued: map[string][]job{}, running: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// push queues j behind owner's other jobs.
func (q *fairQueue) push(owner string, j job) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queued[owner]) == 0 && !q.running[owner] {
		q.ready = append(q.ready, owner)
	}
	q.queued[owner] = append(q.queued[owner], j)
	q.signal()
}

func (q *fairQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take returns the next owner's next job, or ok false when none is ready.
// The caller runs it and then calls done(owner).
func (q *fairQueue) take() (owner string, j job, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.ready) == 0 {
		return "", nil, false
	}
	owner, q.ready = q.ready[0], q.ready[1:]
	jobs := q.queued[owner]
	j, jobs[0] = jobs[0], nil
	if len(jobs) == 1 {
		delete(q.queued, owner)
	} else {
		q.queued[owner] = jobs[1:]
	}
	q.running[owner] = true
	if len(q.ready) > 0 {
		q.signal() // another worker may take the next owner
	}
	return owner, j, true
}

// done ends owner's running job and puts the owner back in turn if it
// has more.
func (q *fairQueue) done(owner string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.running, owner)
	if len(q.queued[owner]) > 0 {
		q.ready = append(q.ready, owner)
		q.signal()
	}
}

// len returns the number of queued jobs (not counting running ones).
func (q *fairQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, jobs := range q.queued {
		n += len(jobs)
	}
	return n
}

// work runs jobs until ctx ends.
func (q *fairQueue) work(ctx context.Context) {
	for {
		owner, j, ok := q.take()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-q.wake:
				continue
			}
		}
		j(ctx)
		q.done(owner)
		if ctx.Err() != nil {
			return
		}
	}
}
