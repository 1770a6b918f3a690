package deliver

import (
	"context"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

// Batching of attempt records (see [recorder]).
const (
	// maxRecordBatch is the most attempts one store write records.
	maxRecordBatch = 128
	// recordLinger is how long a batch waits for more attempts to join it
	// after its first: long enough that a busy dispatcher records tens of
	// attempts per write rather than a few, short next to everything that
	// waits on a record (an ordered destination's next head does not
	// wait: its record is urgent).
	recordLinger = 2 * time.Millisecond
)

// recorder stores the outcomes of one [Dispatcher.Run]'s attempts in
// batches: one [store.Queue.AttemptRecordMany] call, one operation of the
// store's writer and a few statements, for up to maxRecordBatch attempts,
// where each attempt was one writer operation of two statements. The
// writer commits every dirty page of each transaction, so records spread
// over many small commits cost several pages written each; gathered, they
// share them.
//
// A record waits for its batch to commit, as it waited for its own write:
// what follows it (the outcome's hook and logs, the worker's next
// scheduled retry, an ordered destination's next claim) sees the store
// already moved. The attempt's concurrency slot is freed before, when the
// HTTP exchange ends.
type recorder struct {
	d  *Dispatcher
	in chan *pendingRecord
}

// pendingRecord is one attempt waiting for its batch.
type pendingRecord struct {
	p *store.AttemptRecordParams
	// urgent sends the batch at once rather than waiting recordLinger.
	urgent bool
	err    error
	done   chan struct{}
}

func newRecorder(d *Dispatcher) *recorder {
	return &recorder{d: d, in: make(chan *pendingRecord, 4*maxRecordBatch)}
}

// record stores p in the next batch and returns what
// [store.Queue.AttemptRecordMany] said of it, or ctx's error if ctx ends
// first (the batch may still commit). urgent sends the batch without
// waiting for more.
func (rc *recorder) record(ctx context.Context, p *store.AttemptRecordParams, urgent bool) error {
	pr := &pendingRecord{p: p, urgent: urgent, done: make(chan struct{})}
	select {
	case rc.in <- pr:
	default:
		// The queue is full: wait for room, as long as ctx allows.
		select {
		case rc.in <- pr:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	select {
	case <-pr.done:
		return pr.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run writes batches until stop is closed. The Run closes stop only after
// every attempt has returned, so no record is left waiting.
func (rc *recorder) run(stop <-chan struct{}) {
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	batch := make([]*pendingRecord, 0, maxRecordBatch)
	params := make([]*store.AttemptRecordParams, 0, maxRecordBatch)
	for {
		var first *pendingRecord
		select {
		case <-stop:
			return
		case first = <-rc.in:
		}
		batch = append(batch[:0], first)
		if !first.urgent {
			linger.Reset(recordLinger)
		gather:
			for len(batch) < maxRecordBatch {
				select {
				case pr := <-rc.in:
					batch = append(batch, pr)
					if pr.urgent {
						break gather
					}
				case <-linger.C:
					break gather
				}
			}
			linger.Stop()
		}
		// Whatever else is queued already goes along.
	more:
		for len(batch) < maxRecordBatch {
			select {
			case pr := <-rc.in:
				batch = append(batch, pr)
			default:
				break more
			}
		}
		params = params[:0]
		for _, pr := range batch {
			params = append(params, pr.p)
		}
		rc.write(batch, params)
		clear(batch)
		clear(params)
	}
}

// write records one batch and completes its records.
func (rc *recorder) write(batch []*pendingRecord, params []*store.AttemptRecordParams) {
	ctx, cancel := context.WithTimeout(context.Background(), rc.d.recordTimeout)
	defer cancel()
	errs := rc.d.store.AttemptRecordMany(ctx, params)
	for i, pr := range batch {
		pr.err = errs[i]
		close(pr.done)
	}
}
