// Package store declares what mailroom's pipeline needs from storage: the
// row types (requests, events, deliveries, attempts, and the catalog of
// sources, destinations and connections), the [Store] interface that every
// driver implements, and the sentinel errors callers branch on.
//
// Data flows one way: a request is ingested into an event, an event fans out
// into deliveries, and each delivery collects attempts. Every step talks to
// storage only through [Store]; no package outside cmd/mailroom imports a
// driver. The shared conformance suite in package storetest holds each
// driver to the guarantees documented here.
//
// Writes that must be atomic together are single methods
// ([Ingester.RequestIngest], [Queue.AttemptRecord]) rather than caller-driven
// transactions, so that a driver can batch many of them into one commit
// (group commit) without changing the promise to each caller: when the method
// returns nil, its rows are durable.
package store

import (
	"context"
	"time"
)

// Store is the storage seam of mailroom: every role below, plus the
// lifecycle. Implementations are safe for concurrent use. Every method
// honours ctx for cancellation of waiting, but a write that has been
// handed to the storage engine may still commit after ctx is done; callers
// must treat an error as "unknown outcome" and rely on idempotency (dedup
// keys, fencing) to retry safely.
//
// Consumers take the narrowest role they need ([Ingester], [Queue],
// [Catalog], [Tasks], [History], [Pruner], [Notifier], [Tokens], [Audit]), so that what a
// package can touch reads from its constructor.
type Store interface {
	Ingester
	Queue
	Catalog
	Tasks
	History
	Pruner
	Notifier
	Tokens
	Audit

	// Ready reports whether the store can persist right now: it makes a
	// real small write (and commit), so a full disk, a read-only file
	// system, a standby or an unreachable server all fail it. The outcome
	// is cached for [ReadyCacheTTL], so frequent health checks cost at
	// most one write per interval.
	Ready(ctx context.Context) error
	// Close stops the driver and releases its resources. Calls after Close
	// return [ErrClosed].
	Close() error
}

// ReadyCacheTTL is how long [Store.Ready] reuses its last outcome.
const ReadyCacheTTL = time.Second

// Ingester records inbound requests: what the ingest handler needs.
type Ingester interface {
	// RequestIngest persists an accepted request, deduplicates it, and for a
	// first occurrence creates its event and deliveries, all in one
	// transaction. It returns only after that transaction is durable. When
	// the dedup key is already held within its window the request is
	// recorded as a duplicate of the earlier event and no deliveries are
	// created. The store assigns the ids.
	RequestIngest(ctx context.Context, p *RequestIngestParams) (*RequestIngestResult, error)
	// RequestInsert records a request that was not accepted (for example a
	// failed signature), with its reason. The store assigns the id.
	RequestInsert(ctx context.Context, r *Request) (string, error)
}

// Queue is the delivery work queue: creating, claiming, finishing and
// retrying deliveries, and its per-destination figures.
type Queue interface {
	// DeliveryInsertMany creates pending deliveries due at their
	// NextAttemptAt (or now when zero) and marks their events routed. The
	// store assigns the ids.
	DeliveryInsertMany(ctx context.Context, ds []*Delivery) error
	// DeliveryClaimDue leases up to p.Limit pending deliveries of one
	// destination whose NextAttemptAt is at or before p.Now, oldest due
	// first. Each claimed delivery's Attempts is incremented (the returned
	// value is the fencing token for [Queue.AttemptRecord]) and its
	// NextAttemptAt moved to p.LeaseUntil, so no other caller claims it
	// until the lease expires. With p.Ordered it claims at most the oldest
	// pending delivery of the destination, and only when that one is due.
	DeliveryClaimDue(ctx context.Context, p *DeliveryClaimDueParams) ([]*Delivery, error)
	// DeliveryExtendLeases renews leases that a caller still holds: each
	// lease's delivery has its NextAttemptAt moved to p.Until if, and only
	// if, it is still pending with the same Attempts and still due exactly
	// at the lease's Until (so a lease that expired and was claimed again,
	// or an attempt already recorded, is left alone). It returns how many
	// leases it renewed. This is the heartbeat of a live dispatcher: a
	// dead one stops renewing and its deliveries come due within one lease.
	DeliveryExtendLeases(ctx context.Context, p *DeliveryExtendLeasesParams) (int, error)
	// DeliveryReleaseLeases gives back leases a caller holds but will not
	// use (deliveries it claimed ahead and did not send): each lease's
	// delivery, if it is still pending with the same Attempts and still due
	// exactly at the lease's Until (fenced as [Queue.DeliveryExtendLeases]
	// is), is made due at p.Now and its Attempts taken back by one, since
	// the claim made no attempt. Deliveries it moved announce themselves
	// ([NotifyDeliveryDue]). It returns how many leases it released; a
	// lease that lapsed and was claimed again, or was recorded, is left
	// alone.
	DeliveryReleaseLeases(ctx context.Context, p *DeliveryReleaseLeasesParams) (int, error)
	// DeliveryRetry makes one delivery pending and due at now, whatever its
	// status. A dead delivery so gets one more attempt.
	DeliveryRetry(ctx context.Context, id string, now time.Time) (*Delivery, error)
	// DeliveryRetryMany does what DeliveryRetry does for every delivery that
	// matches p (Status defaults to dead) and returns how many it changed.
	DeliveryRetryMany(ctx context.Context, p *DeliveryRetryManyParams) (int, error)
	// DeliveryStats returns, per destination, the number of pending
	// deliveries, the oldest one's creation time, and the count of dead ones.
	DeliveryStats(ctx context.Context) ([]DestinationStats, error)
	// AttemptRecord stores one attempt and moves its delivery to p.Status
	// (pending with p.NextAttemptAt, succeeded or dead) in one transaction.
	// The delivery moves only if its Attempts still equals p.Attempt.Number;
	// otherwise the attempt is stored and [ErrLeaseLost] returned.
	AttemptRecord(ctx context.Context, p *AttemptRecordParams) error
	// AttemptRecordMany does what AttemptRecord does for each of ps,
	// together (in one transaction, where the driver does not batch
	// attempts itself), and returns one error per p, in order: nil when
	// its delivery moved, one wrapping [ErrLeaseLost] when its attempt
	// was stored but the delivery had been claimed again, or the error
	// of the write that failed to store it. It is how the dispatcher
	// records outcomes: a few statements per batch instead of two per
	// attempt.
	AttemptRecordMany(ctx context.Context, ps []*AttemptRecordParams) []error
	// DeliveryInsertFinished records a delivery attempted outside the
	// dispatcher (a `mailroom listen` forward): the delivery, already
	// finished in p.Status (succeeded or dead) with one attempt, its
	// attempt, and its count on the event (which becomes routed), in one
	// transaction, so that no failure leaves a pending delivery that no
	// worker claims. It sets the IDs and fields it fills on p.Delivery and
	// p.Attempt.
	DeliveryInsertFinished(ctx context.Context, p *DeliveryInsertFinishedParams) error
}

// History reads what was received and what happened to it. Lists come
// newest first, in creation order (ids are time-sorted), and page by
// cursor.
type History interface {
	// RequestGetByID returns a request with its headers and body, or
	// [ErrNotFound].
	RequestGetByID(ctx context.Context, id string) (*Request, error)
	// RequestList returns requests newest first, without bodies.
	RequestList(ctx context.Context, p *RequestListParams) ([]*Request, error)
	// EventGetByID returns an event or [ErrNotFound].
	EventGetByID(ctx context.Context, id string) (*Event, error)
	// EventList returns events newest first.
	EventList(ctx context.Context, p *EventListParams) ([]*Event, error)
	// EventSearch returns the events that match p's filters, its text
	// query and its body filter, newest first, bounded in cost: one call
	// examines at most p.ScanRows events (after the source, status,
	// type and time filters) and p.ScanBytes of bodies, and runs at
	// most [SearchTimeout]. So a page may hold fewer events than p.Limit,
	// even none, while [EventPage.Next] says where to go on. Reads only,
	// on the read path: a search never holds up the writer.
	EventSearch(ctx context.Context, p *EventSearchParams) (*EventPage, error)
	// DeliveryGetByID returns a delivery or [ErrNotFound].
	DeliveryGetByID(ctx context.Context, id string) (*Delivery, error)
	// DeliveryList returns deliveries newest first.
	DeliveryList(ctx context.Context, p *DeliveryListParams) ([]*Delivery, error)
	// AttemptList returns a delivery's attempts in order.
	AttemptList(ctx context.Context, deliveryID string) ([]*Attempt, error)
}

// Catalog holds the sources, destinations and connections.
type Catalog interface {
	// SourceUpsert creates or replaces a source by name.
	SourceUpsert(ctx context.Context, s *Source) error
	// SourceGet returns a source by name or [ErrNotFound].
	SourceGet(ctx context.Context, name string) (*Source, error)
	// SourceList returns all sources by name.
	SourceList(ctx context.Context) ([]*Source, error)
	// SourceDelete removes a source and its connections, or returns
	// [ErrNotFound].
	SourceDelete(ctx context.Context, name string) error

	// DestinationUpsert creates or replaces a destination by name, keeping
	// its paused state.
	DestinationUpsert(ctx context.Context, d *Destination) error
	// DestinationGet returns a destination or [ErrNotFound].
	DestinationGet(ctx context.Context, name string) (*Destination, error)
	// DestinationList returns all destinations by name.
	DestinationList(ctx context.Context) ([]*Destination, error)
	// DestinationDelete removes a destination and its connections, or
	// returns [ErrNotFound]. Its deliveries stay for the record.
	DestinationDelete(ctx context.Context, name string) error
	// DestinationSetPaused pauses or resumes a destination.
	DestinationSetPaused(ctx context.Context, name string, paused bool, reason string) error
	// DestinationSetCircuit moves a destination's circuit breaker from
	// state from to state to, if and only if it is still in from (compare
	// and set, so that of several instances one opens the circuit and one
	// sends each probe). It reports whether it moved; a missing
	// destination is [ErrNotFound]. Closing it makes the destination's
	// deliveries due for every instance.
	DestinationSetCircuit(ctx context.Context, name string, from, to CircuitState) (bool, error)

	// ConnectionUpsert creates or replaces a connection by ID; an empty ID
	// becomes [ConnectionID] of its ends. The source and destination must
	// exist, or it returns [ErrNotFound].
	ConnectionUpsert(ctx context.Context, c *Connection) error
	// ConnectionGet returns a connection or [ErrNotFound].
	ConnectionGet(ctx context.Context, id string) (*Connection, error)
	// ConnectionList returns all connections by id.
	ConnectionList(ctx context.Context) ([]*Connection, error)
	// ConnectionDelete removes a connection or returns [ErrNotFound].
	ConnectionDelete(ctx context.Context, id string) error
	// CatalogSync makes the entries owned by the config file
	// ([ManagedByConfig]) exactly p's, in one transaction: it writes each
	// of p's sources, destinations and connections as config-owned
	// (taking over an API-created entry of the same name, keeping a
	// destination's paused state, leaving unchanged entries untouched),
	// and deletes every config-owned entry p does not hold. Deleting a
	// source or destination also deletes the connections that name it,
	// whoever owns them; the pending deliveries of a deleted destination
	// become dead with p.RemovedReason as their last error, so they stay
	// visible and can be retried once the destination is back. Entries
	// owned by the API are otherwise left alone. On error nothing changes.
	CatalogSync(ctx context.Context, p *CatalogSyncParams) (*CatalogSyncResult, error)
}

// Tasks holds durable MCP tasks.
type Tasks interface {
	// TaskCreate stores a new task in t.Status (working when empty). The
	// caller sets ID; the store stamps CreatedAt, UpdatedAt and ExpiresAt.
	// An existing ID is [ErrDuplicate].
	TaskCreate(ctx context.Context, t *Task) error
	// TaskGet returns a task, or [ErrNotFound] when there is none or it
	// expired before now.
	TaskGet(ctx context.Context, id string, now time.Time) (*Task, error)
	// TaskList returns tasks newest first by creation time (ties broken
	// by id, so pages never skip or repeat a task).
	TaskList(ctx context.Context, p *TaskListParams) ([]*Task, error)
	// TaskUpdate changes a task that is not terminal and returns it. On a
	// terminal task it changes nothing and returns the task with
	// [ErrTaskTerminal], so of two racing completions exactly one wins.
	// A missing or expired task is [ErrNotFound].
	TaskUpdate(ctx context.Context, p *TaskUpdateParams) (*Task, error)
	// TaskListWaiting returns every task that is not terminal, not expired
	// at now, and has a Wait: the correlator's working set.
	TaskListWaiting(ctx context.Context, now time.Time) ([]*Task, error)
	// TaskDeleteExpired deletes up to limit tasks expired before now and
	// returns how many it deleted.
	TaskDeleteExpired(ctx context.Context, now time.Time, limit int) (int, error)
}

// Pruner deletes old history.
type Pruner interface {
	// Prune deletes history older than p.Before, at most p.Limit rows of
	// each table per call, and says how many of each it deleted; callers
	// repeat it until [PruneResult.Done] so that no call holds the writer
	// for long. It deletes attempts started before p.Before whose delivery
	// is finished, finished deliveries last updated before p.Before,
	// events received before p.Before that no delivery refers to any more,
	// requests received before p.Before whose own event is gone (rejected
	// and duplicate requests included), and dedup keys whose window ended
	// by p.Now, and audit entries recorded before p.AuditBefore (when
	// set). Pending deliveries, and the events and requests they are
	// sent from, are never deleted.
	Prune(ctx context.Context, p *PruneParams) (*PruneResult, error)
}

// Notifier tells in-process loops that something changed.
type Notifier interface {
	// Subscribe returns a channel of change notifications until ctx ends.
	// Notifications are hints for waking loops, not a log: a slow
	// subscriber may miss some, so consumers also poll.
	Subscribe(ctx context.Context) <-chan Notification
}

// RequestIngestParams is the input of [Store.RequestIngest].
type RequestIngestParams struct {
	// Request is the accepted request. Status and ID are set by the store.
	Request *Request
	// Event carries the event's Type, DedupKey and DedupError. An empty
	// DedupKey means no deduplication; DedupError, stored with the event,
	// says why when the source meant to deduplicate.
	Event *Event
	// DedupWindow is how long the key is held. Zero means [DefaultDedupWindow].
	DedupWindow time.Duration
	// Deliveries to create when the event is new: Destination and
	// ConnectionID set, the rest filled by the store.
	Deliveries []*Delivery
}

// RequestIngestResult is the outcome of [Store.RequestIngest].
type RequestIngestResult struct {
	RequestID string
	// EventID is the new event, or for a duplicate the original one.
	EventID   string
	Duplicate bool
	// DeliveryIDs are the deliveries created, in the order given.
	DeliveryIDs []string
}

// RequestListParams filters and pages [History.RequestList]. Zero fields
// do not filter.
type RequestListParams struct {
	// Project keeps the rows of one project; empty keeps every project.
	Project string
	Source  string
	Status  string
	// Type keeps requests whose event has this event type (so rejected
	// requests, which have no event, never match).
	Type string
	// EventID keeps the requests of one event: the one that created it
	// and its duplicates.
	EventID string
	// Query keeps requests whose body contains Query as a substring.
	// ASCII letters match regardless of case; every other character,
	// including % and _, matches only itself.
	Query string
	// Since and Until bound the receipt time: Since <= received_at < Until.
	Since, Until time.Time
	// Cursor is the id of the last row of the previous page; the list
	// continues after it (older).
	Cursor string
	// Limit caps the rows returned (see [PageLimit]).
	Limit int
}

// EventListParams filters and pages [History.EventList]. Zero fields do
// not filter.
type EventListParams struct {
	// Project keeps the rows of one project; empty keeps every project.
	Project string
	Source  string
	Status  string
	// Type filters by event type.
	Type string
	// Query keeps events whose request body contains Query (matched as
	// [RequestListParams.Query] is).
	Query string
	// Since and Until bound the receipt time: Since <= received_at < Until.
	Since, Until time.Time
	// Cursor is the id of the last row of the previous page.
	Cursor string
	// Limit caps the rows returned (see [PageLimit]).
	Limit int
}

// BodyFilter decides whether a request body matches a search (package
// search implements it with path=value conditions).
type BodyFilter interface {
	// MatchBody reports whether body, sent with contentType, matches.
	MatchBody(contentType string, body []byte) bool
}

// EventSearchParams filters and pages [History.EventSearch]: the filters
// and page of the event list, plus a body filter and the scan bound.
type EventSearchParams struct {
	EventListParams
	// Body, if set, keeps events whose request body it accepts. Events
	// whose request retention removed never match it, nor Query.
	Body BodyFilter
	// ScanRows caps the events one call examines. Zero means
	// [DefaultSearchScanRows]; at most [MaxSearchScanRows].
	ScanRows int
	// ScanBytes caps the bytes of bodies one call reads (it stops after
	// the read that crosses it). Zero means [SearchScanBytes]; at most
	// that.
	ScanBytes int
}

// EventPage is one page of [History.EventSearch].
type EventPage struct {
	Events []*Event
	// Next is the cursor of the next page (an event id, as the event
	// list's cursor is): set when older events remain to be examined,
	// empty when the search reached the oldest one.
	Next string
	// Scanned counts the events this call examined.
	Scanned int
}

// Bounds of one [History.EventSearch] call.
const (
	// DefaultSearchScanRows is how many events a search examines per call
	// when it does not say.
	DefaultSearchScanRows = 5000
	// MaxSearchScanRows is the most events a search examines per call.
	MaxSearchScanRows = 50000
	// SearchScanBytes is how many bytes of request bodies a search reads
	// per call at most; it stops after the read that crosses it.
	SearchScanBytes = 64 << 20
	// SearchTimeout bounds one search call's statements.
	SearchTimeout = 10 * time.Second
)

// DeliveryListParams filters and pages [History.DeliveryList]. Zero fields
// do not filter.
type DeliveryListParams struct {
	// Project keeps the rows of one project; empty keeps every project.
	Project     string
	Source      string
	Destination string
	Status      string
	// Type keeps deliveries whose event has this event type.
	Type    string
	EventID string
	// Query keeps deliveries whose request body contains Query (matched as
	// [RequestListParams.Query] is).
	Query string
	// Since and Until bound the creation time: Since <= created_at < Until.
	Since, Until time.Time
	// Cursor is the id of the last row of the previous page.
	Cursor string
	// Limit caps the rows returned (see [PageLimit]).
	Limit int
}

// DeliveryRetryManyParams selects the deliveries [Queue.DeliveryRetryMany]
// makes due again. Zero fields do not filter, except Status, which
// defaults to dead.
type DeliveryRetryManyParams struct {
	// Project keeps the rows of one project; empty keeps every project.
	Project     string
	Source      string
	Destination string
	Status      string
	Type        string
	EventID     string
	Query       string
	Since       time.Time
	Until       time.Time
	// Now is when the deliveries become due. Zero means the wall clock.
	Now time.Time
}

// PageLimit returns limit defaulted and clamped for a list: zero or less
// means [DefaultPageLimit], and at most [MaxPageLimit].
func PageLimit(limit int) int {
	if limit <= 0 {
		return DefaultPageLimit
	}
	return min(limit, MaxPageLimit)
}

// FetchPage fetches one page of a newest-first list, at most limit rows
// after cursor, and the cursor of the next page ("" when none follows).
// fetch reads the list with a cursor and a limit. FetchPage asks it for
// one row more than the page to know whether another page follows; at
// [MaxPageLimit], which no list exceeds, it probes for the row after the
// page instead, so a full last page gets no cursor to an empty one. limit
// must be from 1 to MaxPageLimit.
func FetchPage[T any](ctx context.Context, cursor string, limit int, fetch func(ctx context.Context, cursor string, limit int) ([]*T, error), id func(*T) string) ([]*T, string, error) {
	ask := limit
	if limit < MaxPageLimit {
		ask = limit + 1
	}
	rows, err := fetch(ctx, cursor, ask)
	if err != nil {
		return nil, "", err
	}
	if len(rows) > limit {
		rows = rows[:limit]
		return rows, id(rows[len(rows)-1]), nil
	}
	if len(rows) == limit && ask == limit && len(rows) > 0 {
		next := id(rows[len(rows)-1])
		more, err := fetch(ctx, next, 1)
		if err != nil {
			return nil, "", err
		}
		if len(more) > 0 {
			return rows, next, nil
		}
	}
	return rows, "", nil
}

// Page sizes of every list.
const (
	// DefaultPageLimit is a list's page size when it sets none.
	DefaultPageLimit = 50
	// MaxPageLimit is the largest page a list returns.
	MaxPageLimit = 1000
)

// DeliveryClaimDueParams is the input of [Store.DeliveryClaimDue].
type DeliveryClaimDueParams struct {
	Destination string
	Now         time.Time
	LeaseUntil  time.Time
	Limit       int
	Ordered     bool
}

// DeliveryLease is one claim held by a caller: the delivery, the fencing
// token its claim returned (Attempts), and the expiry it holds now.
type DeliveryLease struct {
	ID      string
	Attempt int
	Until   time.Time
}

// DeliveryExtendLeasesParams is the input of [Queue.DeliveryExtendLeases].
type DeliveryExtendLeasesParams struct {
	// Leases are the claims to renew.
	Leases []DeliveryLease
	// Until is the new expiry of each renewed lease.
	Until time.Time
	// Now stamps the update.
	Now time.Time
}

// DeliveryReleaseLeasesParams is the input of [Queue.DeliveryReleaseLeases].
type DeliveryReleaseLeasesParams struct {
	// Leases are the claims to give back.
	Leases []DeliveryLease
	// Now is when the released deliveries are due again, and stamps the
	// update.
	Now time.Time
}

// AttemptRecordParams is the input of [Store.AttemptRecord].
type AttemptRecordParams struct {
	// Attempt is stored with a store-assigned ID; Number is the fencing
	// token returned by the claim.
	Attempt *Attempt
	// Status is the delivery's next status.
	Status string
	// NextAttemptAt is when a pending delivery is next due.
	NextAttemptAt time.Time
	// Retry, if non-nil, is the retry policy that decided Status and
	// NextAttemptAt, recorded on the delivery ([Delivery.Retry]).
	Retry *RetryApplied
	// Now stamps the update.
	Now time.Time
}

// DeliveryInsertFinishedParams is the input of
// [Queue.DeliveryInsertFinished].
type DeliveryInsertFinishedParams struct {
	// Delivery names the event (EventID, RequestID, Source), the
	// Destination and the ConnectionID. The store sets its ID, Status,
	// Attempts (1), LastError, LastStatus and times.
	Delivery *Delivery
	// Attempt is the one attempt, with its outcome (StartedAt,
	// DurationMS, StatusCode, ResponseBody, Error, Success). The store sets
	// its ID, DeliveryID, EventID, Destination and Number (1).
	Attempt *Attempt
	// Status is the delivery's status: succeeded or dead.
	Status string
	// Now stamps the delivery. Zero means the wall clock.
	Now time.Time
}

// PruneParams is the input of [Store.Prune].
type PruneParams struct {
	// Before is the retention horizon: older rows go.
	Before time.Time
	// Now decides which dedup windows have ended. Zero means the wall
	// clock.
	Now time.Time
	// Limit caps the rows deleted per table. Zero means 1000.
	Limit int
	// Project prunes only that project's rows; empty prunes every
	// project but those in Except.
	Project string
	// Except are projects left alone by a prune of every project (those
	// with a retention of their own).
	Except []string
	// AuditBefore is the audit log's horizon: older entries go, on a
	// prune of every project (Project empty). Zero keeps them all.
	AuditBefore time.Time
}

// PruneResult counts the rows one [Store.Prune] call deleted.
type PruneResult struct {
	Requests, Events, Deliveries, Attempts, Dedup, Audit int
	// Done reports that every table had fewer than Limit rows to delete,
	// so another call now would find (almost) nothing.
	Done bool
}

// Total is the number of rows deleted.
func (r *PruneResult) Total() int {
	return r.Requests + r.Events + r.Deliveries + r.Attempts + r.Dedup + r.Audit
}

// CatalogSyncParams are the entries the config file declares, for
// [Store.CatalogSync].
type CatalogSyncParams struct {
	Sources      []*Source
	Destinations []*Destination
	// Connections may name sources and destinations of the API as well as
	// of the file. An empty ID becomes [ConnectionID] of its ends.
	Connections []*Connection
	// RemovedReason is the last error recorded on the pending deliveries
	// of a destination the sync deletes, e.g. "destination removed from
	// the config file mailroom.yaml".
	RemovedReason string
}

// CatalogSyncResult says what a [Store.CatalogSync] changed.
type CatalogSyncResult struct {
	// Written are the entries created or changed (an unchanged entry is
	// not written), Adopted those among them that the API owned before,
	// and Removed the config-owned entries deleted. Connections deleted
	// only because an end was deleted are in Removed too.
	Written, Adopted, Removed CatalogNames
	// DeadDeliveries counts the pending deliveries of removed destinations
	// that became dead.
	DeadDeliveries int
}

// CatalogNames are catalog entry names (connection ids) by kind.
type CatalogNames struct {
	Sources      []string `json:"sources,omitempty"`
	Destinations []string `json:"destinations,omitempty"`
	Connections  []string `json:"connections,omitempty"`
}

// Len returns the number of names of every kind.
func (n CatalogNames) Len() int { return len(n.Sources) + len(n.Destinations) + len(n.Connections) }

// Changed reports whether the sync wrote or removed anything.
func (r *CatalogSyncResult) Changed() bool {
	return r.Written.Len() > 0 || r.Removed.Len() > 0
}

// DestinationStats summarises a destination's queue.
type DestinationStats struct {
	Destination   string
	Pending       int
	OldestPending time.Time
	Dead          int
}

// Notification kinds.
const (
	// NotifyDeliveryDue: deliveries for Destination became due.
	NotifyDeliveryDue = "delivery.due"
	// NotifyCatalogChanged: sources, destinations or connections changed.
	NotifyCatalogChanged = "catalog.changed"
	// NotifyEventCreated: an event ID was created (Source set).
	NotifyEventCreated = "event.created"
	// NotifyTaskChanged: task ID was created or changed status.
	NotifyTaskChanged = "task.changed"
)

// Notification is a hint that something changed.
type Notification struct {
	Kind        string
	Destination string
	// Source is set on event.created.
	Source string
	ID     string
}
