package deliver

import (
	"context"
	"sync"
	"time"

	"github.com/mailroomhq/mailroom/internal/store"
)

// leaseKeeper holds the claims of one [Dispatcher.Run] and renews them
// while their attempts are in flight: the renewal is the instance's
// heartbeat in the store. A claim lasts [Options.Lease] unless renewed, so
// when an instance dies (SIGKILL, a lost host) its deliveries come due for
// the others within one lease, not after the destination's whole timeout.
// A live instance renews every Lease/4, so a store that stalls for up to
// three quarters of a lease costs no second attempt.
type leaseKeeper struct {
	d    *Dispatcher
	mu   sync.Mutex
	held map[string]store.DeliveryLease // by delivery id
}

func newLeaseKeeper(d *Dispatcher) *leaseKeeper {
	return &leaseKeeper{d: d, held: map[string]store.DeliveryLease{}}
}

// add starts renewing the claim of dl.
func (k *leaseKeeper) add(dl *store.Delivery) {
	k.mu.Lock()
	k.held[dl.ID] = store.DeliveryLease{ID: dl.ID, Attempt: dl.Attempts, Until: dl.NextAttemptAt}
	k.mu.Unlock()
}

// remove stops renewing the claim of dl, once its attempt is recorded (or
// abandoned to its lease).
func (k *leaseKeeper) remove(dl *store.Delivery) {
	k.mu.Lock()
	delete(k.held, dl.ID)
	k.mu.Unlock()
}

// run renews the held claims every Lease/4 until stop is closed.
func (k *leaseKeeper) run(stop <-chan struct{}) {
	t := time.NewTicker(k.d.opts.Lease / 4)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if err := k.renew(); err != nil {
			// The next tick tries again; a lease that lapses meanwhile
			// costs at most a second attempt, which the fence keeps from
			// being recorded twice.
			k.d.log.Warn("renew delivery leases", "err", err)
		}
	}
}

// renew extends every held claim to now + Lease in one store write.
func (k *leaseKeeper) renew() error {
	k.mu.Lock()
	leases := make([]store.DeliveryLease, 0, len(k.held))
	for _, l := range k.held {
		leases = append(leases, l)
	}
	k.mu.Unlock()
	if len(leases) == 0 {
		return nil
	}
	now := k.d.now()
	// The store keeps microseconds; the fence compares the exact value.
	until := now.Add(k.d.opts.Lease).Truncate(time.Microsecond)
	ctx, cancel := context.WithTimeout(context.Background(), k.d.opts.Lease)
	defer cancel()
	if _, err := k.d.store.DeliveryExtendLeases(ctx, &store.DeliveryExtendLeasesParams{Leases: leases, Until: until, Now: now}); err != nil {
		return err
	}
	// A lease the store did not renew (its attempt was recorded meanwhile)
	// no longer matches the fence either way; it leaves with its attempt.
	k.mu.Lock()
	for _, l := range leases {
		if cur, ok := k.held[l.ID]; ok && cur.Attempt == l.Attempt {
			cur.Until = until
			k.held[l.ID] = cur
		}
	}
	k.mu.Unlock()
	return nil
}
