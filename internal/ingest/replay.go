package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/mailroomhq/mailroom/internal/catalog"
	"github.com/mailroomhq/mailroom/internal/route"
	"github.com/mailroomhq/mailroom/internal/store"
)

// ReplayStore is what [Replay] needs of the store: read an event and its
// request, and create deliveries.
type ReplayStore interface {
	EventGetByID(ctx context.Context, id string) (*store.Event, error)
	RequestGetByID(ctx context.Context, id string) (*store.Request, error)
	DeliveryInsertMany(ctx context.Context, ds []*store.Delivery) error
}

// ErrRequestGone is returned by [Replay] when retention has removed the
// event's request, so there is nothing to route again.
var ErrRequestGone = errors.New("no longer stored")

// Replay routes event id's original request again through the connections
// of cat's current snapshot, as ingest routed it ([catalog.Snapshot.Deliveries]),
// and creates a pending delivery for every match; earlier deliveries are
// left as they are. It returns the new deliveries (empty, not nil, when
// nothing matches), an error wrapping [store.ErrNotFound] for an unknown
// event, or one wrapping [ErrRequestGone]. The admin API, the dashboard and
// the MCP server all replay through it.
func Replay(ctx context.Context, st ReplayStore, cat *catalog.Catalog, id string) ([]*store.Delivery, error) {
	ev, err := st.EventGetByID(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("replay event %s: %w", id, err)
	}
	req, err := st.RequestGetByID(ctx, ev.RequestID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("event %s cannot be replayed: its request %s is %w", ev.ID, ev.RequestID, ErrRequestGone)
	}
	if err != nil {
		return nil, fmt.Errorf("replay event %s: %w", id, err)
	}
	query, _ := url.ParseQuery(req.Query) // keep what parses, as ingest did
	ds := cat.Current().Deliveries(route.NewInput(ev.Source, req.Path, query, req.Headers, req.Body))
	if ds == nil {
		ds = []*store.Delivery{}
	}
	for _, d := range ds {
		d.EventID, d.RequestID, d.Source = ev.ID, ev.RequestID, ev.Source
	}
	if err := st.DeliveryInsertMany(ctx, ds); err != nil {
		return nil, fmt.Errorf("replay event %s: %w", id, err)
	}
	return ds, nil
}
