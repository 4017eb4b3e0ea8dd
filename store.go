package eventsourcing

import (
	"context"

	"github.com/aggregatekit/eventsourcing/backend"
)

// Names of the store contract, re-exported from package backend (as os
// re-exports io/fs) so that applications and middleware import this package
// only. Stores import package backend.
type (
	// StreamID identifies one event stream: the events of one aggregate
	// instance, by aggregate type and key.
	StreamID = backend.StreamID
	// Record is one stored event: its stream, sequence, type name, encoded
	// data, timestamp, metadata and commit ID.
	Record = backend.Record
	// Metadata is a set of string headers stored with every event of a
	// commit. See WithMetadata.
	Metadata = backend.Metadata
	// Backend is what a database implements; NewStore adapts it to an
	// EventStore.
	Backend = backend.Backend
	// Snapshot is the encoded state of an aggregate at a sequence.
	Snapshot = backend.Snapshot
	// SnapshotStore keeps one snapshot per stream (for the snapshot
	// middleware).
	SnapshotStore = backend.SnapshotStore
)

// Limits on stream identities and event names (see StreamID.Validate and
// ValidEventName).
const (
	MaxAggregateTypeLen = backend.MaxAggregateTypeLen
	MaxKeyLen           = backend.MaxKeyLen
	MaxEventNameLen     = backend.MaxEventNameLen
)

// ValidEventName reports whether name can be used as an event type name:
// 1 to MaxEventNameLen bytes of valid UTF-8 with no control characters or
// spaces. Errors wrap ErrInvalidEventName.
func ValidEventName(name string) error { return backend.ValidEventName(name) }

// EventStore is what aggregates talk to and what Middleware wraps.
// Implementations must be safe for concurrent use.
//
// Refresh brings the aggregate behind l up to date: it applies, through
// l.Apply, every stored event after l.Sequence(), in order (a snapshot
// middleware may first l.Restore a snapshot). Commit stores c atomically,
// failing with an error matching ErrConcurrency, having stored nothing, if
// the stream has moved past c.Expected. Close releases the store;
// middleware forwards it.
type EventStore interface {
	Refresh(ctx context.Context, l Loader) error
	Commit(ctx context.Context, c Commit) error
	Close() error
}

// Loader is the aggregate as seen by EventStore.Refresh: the one callback
// from a store into an aggregate. It is valid only for the duration of the
// call and is not safe for concurrent use.
type Loader interface {
	// Stream is the stream to load.
	Stream() StreamID
	// Sequence is the last sequence applied to the aggregate so far.
	Sequence() int64
	// State is the aggregate's state value (what a snapshot captures).
	State() any
	// Apply decodes rec and applies it to the state. rec.Sequence must be
	// Sequence()+1; otherwise Apply returns a *SequenceError and changes
	// nothing. A record that cannot be decoded yields a *RecordError; an
	// unknown type an *UnknownEventTypeError (unless the aggregate skips them).
	Apply(rec Record) error
	// Restore replaces the state with one decoded from a snapshot taken at
	// sequence, and the aggregate's memory of recent commit IDs with
	// recent (oldest first; see WithCommandID). If decoding fails the
	// aggregate is reset to its zero state at sequence 0 (never left
	// half-restored) and an error matching ErrInvalidSnapshot is returned,
	// so the caller can replay from the start. Restore(0, nil, nil) is a
	// plain reset to the zero state at sequence 0.
	Restore(sequence int64, state []byte, recent []string) error
}

// Commit is what EventStore.Commit stores: the events one command raised,
// encoded as records for the backend (the embedded backend.Commit: Stream,
// Expected, ID, Records) and as the values the handler returned, for
// middleware. Records and Events must not be modified; they stay valid
// after the call.
type Commit struct {
	backend.Commit
	// Events are the events as the handler raised them, in the order of
	// Records.
	Events []Event
	// Codec is the registry's codec, to encode State for a snapshot.
	Codec Codec

	agg *AggregateBase // nil for a Commit not made by an aggregate
}

// State returns the aggregate's state with the commit's events applied:
// what a snapshot at sequence Last() captures. The aggregate applies the
// events once the commit has succeeded; the first call to State applies them
// earlier, so if the commit then fails the aggregate must reload its whole
// history on its next use. Middleware should therefore call it only after
// the commit below it succeeded (as the snapshot middleware does). It may
// be called only during EventStore.Commit, and returns nil for a Commit
// not made by an aggregate.
func (c Commit) State() any {
	if c.agg == nil {
		return nil
	}
	return c.agg.stateAfter(c.Events)
}

// RecentCommitIDs returns the IDs of the stream's latest commits that the
// aggregate remembers, oldest first, ending with this commit's ID: the
// window in which a repeated command is recognised (see WithCommandID),
// which a snapshot keeps. It returns a new slice; nil for a Commit not made
// by an aggregate.
func (c Commit) RecentCommitIDs() []string {
	if c.agg == nil {
		return nil
	}
	return c.agg.recentWith(c.ID)
}

// Middleware wraps an EventStore to add behaviour (snapshots, logging,
// publishing, ...). See Wrap for the order of composition.
type Middleware func(next EventStore) EventStore

// Wrap returns store wrapped in the middleware, outermost first:
// Wrap(s, a, b) is a(b(s)), so a call reaches a first, then b, then s, and
// results return through b before a. A nil middleware is skipped.
func Wrap(store EventStore, middleware ...Middleware) EventStore {
	for i := len(middleware) - 1; i >= 0; i-- {
		if middleware[i] != nil {
			store = middleware[i](store)
		}
	}
	return store
}

// NewStore returns an EventStore over a Backend. It is the only adapter
// between the two contracts: Refresh loads through Backend.Load and hands
// each record to Loader.Apply (which checks that sequences are contiguous
// and start after the requested position), and Commit passes the commit's
// backend part to one Backend.Append. Closing the store closes the backend.
// The result is safe for concurrent use if the backend is.
//
// The backend's optional capabilities (a Feed, an Outbox, Checkpoints)
// stay reachable: BackendOf returns the backend of a store NewStore made.
func NewStore(b Backend) EventStore { return &backendStore{b} }

type backendStore struct{ b Backend }

func (s *backendStore) Refresh(ctx context.Context, l Loader) error {
	if al, ok := l.(aggLoader); ok {
		// The aggregate's own yield function, made once per instance: a
		// refresh that finds nothing new allocates nothing.
		b := al.b
		s.b.Load(ctx, b.run.stream, b.run.seq)(b.yielder())
		err := b.run.loadErr
		b.run.loadErr = nil
		return err
	}
	return load(ctx, s.b, l)
}

// load applies the records after l.Sequence() to l. It is apart from
// Refresh because a range-over-func loop moves its function's result
// variables to the heap, which the aggregate's path avoids.
func load(ctx context.Context, b Backend, l Loader) error {
	for rec, err := range b.Load(ctx, l.Stream(), l.Sequence()) {
		if err != nil {
			return err
		}
		if err := l.Apply(rec); err != nil {
			return err
		}
	}
	return nil
}

func (s *backendStore) Commit(ctx context.Context, c Commit) error {
	if len(c.Records) == 0 {
		return nil
	}
	return s.b.Append(ctx, c.Commit)
}

func (s *backendStore) Close() error { return s.b.Close() }

// Backend returns the wrapped backend.
func (s *backendStore) Backend() Backend { return s.b }

// BackendOf returns the Backend under store if store was made by NewStore,
// or if it (a middleware) implements Unwrap() EventStore down to one that
// was; otherwise nil. Use it to reach a backend's optional capabilities
// (a Feed, an Outbox, Checkpoints) through a wrapped store.
func BackendOf(store EventStore) Backend {
	for store != nil {
		switch s := store.(type) {
		case interface{ Backend() Backend }:
			return s.Backend()
		case interface{ Unwrap() EventStore }:
			store = s.Unwrap()
		default:
			return nil
		}
	}
	return nil
}
