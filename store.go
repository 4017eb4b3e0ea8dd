package eventsourcing

import (
	"context"
	"fmt"
	"iter"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on stream identities, checked by StreamID.Validate.
const (
	MaxAggregateTypeLen = 200
	MaxKeyLen           = 1024
)

// StreamID identifies one event stream: the events of one aggregate instance.
// Two aggregates of different types may share a key without sharing a stream.
type StreamID struct {
	AggregateType string
	Key           string
}

// String returns "AggregateType/Key". Because Validate forbids '/' in the
// aggregate type, the form is unambiguous and backends may use it as a
// single partition key.
func (s StreamID) String() string { return s.AggregateType + "/" + s.Key }

// Validate reports, wrapping ErrInvalidStream, an empty or overlong aggregate
// type or key, an aggregate type containing '/', or either containing invalid
// UTF-8 or control characters.
func (s StreamID) Validate() error {
	switch {
	case s.AggregateType == "":
		return fmt.Errorf("%w: empty aggregate type", ErrInvalidStream)
	case s.Key == "":
		return fmt.Errorf("%w: empty key for aggregate type %q", ErrInvalidStream, s.AggregateType)
	case len(s.AggregateType) > MaxAggregateTypeLen:
		return fmt.Errorf("%w: aggregate type longer than %d bytes", ErrInvalidStream, MaxAggregateTypeLen)
	case len(s.Key) > MaxKeyLen:
		return fmt.Errorf("%w: key longer than %d bytes", ErrInvalidStream, MaxKeyLen)
	case strings.Contains(s.AggregateType, "/"):
		return fmt.Errorf("%w: aggregate type %q contains '/'", ErrInvalidStream, s.AggregateType)
	case !printable(s.AggregateType):
		return fmt.Errorf("%w: aggregate type %q has invalid UTF-8 or control characters", ErrInvalidStream, s.AggregateType)
	case !printable(s.Key):
		return fmt.Errorf("%w: key %q has invalid UTF-8 or control characters", ErrInvalidStream, s.Key)
	}
	return nil
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// Metadata is a set of string headers stored with every event of a commit
// (correlation and causation IDs, user headers). See WithMetadata.
type Metadata map[string]string

// Record is one stored event as a backend sees it: bytes plus identity.
// Records yielded by Backend.Load are owned by the caller but may share
// backing arrays with the store; treat Data and Metadata as read-only.
type Record struct {
	Stream    StreamID
	Sequence  int64     // 1-based position in the stream
	EventType string    // the registry's name for the event's Go type
	Data      []byte    // the event encoded by the registry's codec
	Timestamp time.Time // commit time, UTC; all events of a commit share it
	Metadata  Metadata  // from the committing context; may be nil
}

// Backend is what a database implements: an append-only log of records per
// stream. Implementations must be safe for concurrent use.
//
// Append stores all records or none. It returns an error matching
// ErrConcurrency, having stored nothing, when the stream's last sequence is not
// expected (0 for a new stream). records must be numbered expected+1,
// expected+2, ... and belong to stream; CheckAppend verifies that. Appending
// no records is a no-op.
//
// Load yields the records of stream with a sequence greater than after, in
// ascending order, stopping at the first error (which it yields). It must
// stream long histories rather than hold them in memory at once. Callers
// validate contiguity, so a backend does not need to.
//
// Close releases what the backend owns; afterwards, calls return ErrClosed.
type Backend interface {
	Append(ctx context.Context, stream StreamID, expected int64, records []Record) error
	Load(ctx context.Context, stream StreamID, after int64) iter.Seq2[Record, error]
	Close() error
}

// CheckAppend validates the arguments of Backend.Append: a valid stream and
// records numbered expected+1, expected+2, ... belonging to it, each with an
// event type. Backends call it before writing; errors wrap ErrInvalidAppend or
// ErrInvalidStream.
func CheckAppend(stream StreamID, expected int64, records []Record) error {
	if err := stream.Validate(); err != nil {
		return err
	}
	if expected < 0 {
		return fmt.Errorf("%w: negative expected sequence %d", ErrInvalidAppend, expected)
	}
	for i, r := range records {
		if r.Stream != stream {
			return fmt.Errorf("%w: record %d belongs to stream %s, not %s", ErrInvalidAppend, i, r.Stream, stream)
		}
		if want := expected + int64(i) + 1; r.Sequence != want {
			return fmt.Errorf("%w: record %d has sequence %d, want %d", ErrInvalidAppend, i, r.Sequence, want)
		}
		if r.EventType == "" {
			return fmt.Errorf("%w: record %d has no event type", ErrInvalidAppend, i)
		}
	}
	return nil
}

// EventStore is what aggregates talk to and what Middleware wraps.
// Implementations must be safe for concurrent use.
//
// Refresh brings the aggregate behind l up to date: it applies, through
// l.Apply, every stored event after l.Sequence(), in order. Commit stores the
// pending events of w atomically, failing with an error matching
// ErrConcurrency if the stream has moved past w.Expected(). Close releases the
// store; middleware forwards it.
type EventStore interface {
	Refresh(ctx context.Context, l Loader) error
	Commit(ctx context.Context, w Writer) error
	Close() error
}

// Loader is the aggregate as seen by EventStore.Refresh. It is valid only for
// the duration of the call and is not safe for concurrent use.
type Loader interface {
	// Stream is the stream to load.
	Stream() StreamID
	// Sequence is the last sequence applied to the aggregate so far.
	Sequence() int64
	// Registry maps stored type names to Go types.
	Registry() EventRegistry
	// State is the aggregate's state value (what a snapshot captures).
	State() any
	// Apply decodes rec and applies it to the state. rec.Sequence must be
	// Sequence()+1; otherwise Apply returns a *SequenceError and changes
	// nothing. A record that cannot be decoded yields a *RecordError; an
	// unknown type an *UnknownEventTypeError (unless the aggregate skips them).
	Apply(rec Record) error
	// Restore replaces the state with one decoded from a snapshot taken at
	// sequence. If decoding fails the aggregate is reset to its zero state at
	// sequence 0 (never left half-restored) and an error matching
	// ErrInvalidSnapshot is returned, so the caller can replay from the start.
	// Restore(0, nil) is a plain reset to the zero state at sequence 0.
	Restore(sequence int64, state []byte) error
}

// Writer is the aggregate as seen by EventStore.Commit. It is valid only for
// the duration of the call and is not safe for concurrent use.
type Writer interface {
	// Stream is the stream to append to.
	Stream() StreamID
	// Expected is the stream's last sequence that the pending events were
	// decided against; the commit must fail with ErrConcurrency otherwise.
	Expected() int64
	// Registry maps Go types to stored type names.
	Registry() EventRegistry
	// Events are the pending events, as raised, in order.
	Events() []Event
	// Records are the pending events encoded, numbered Expected()+1, ... and
	// stamped with the commit's timestamp and metadata. The slice is shared:
	// do not modify it.
	Records() []Record
	// State is the aggregate's state with the pending events applied: what
	// a snapshot at Expected()+len(Records()) captures.
	State() any
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
// between the two contracts: it loads through Backend.Load, verifies through
// Loader.Apply that sequences are contiguous and start after the requested
// position, and commits a Writer's records with one Backend.Append. Closing
// the store closes the backend. The result is safe for concurrent use if the
// backend is.
func NewStore(b Backend) EventStore { return backendStore{b} }

type backendStore struct{ b Backend }

func (s backendStore) Refresh(ctx context.Context, l Loader) error {
	stream := l.Stream()
	for rec, err := range s.b.Load(ctx, stream, l.Sequence()) {
		if err != nil {
			return err
		}
		if err := l.Apply(rec); err != nil {
			return err
		}
	}
	return nil
}

func (s backendStore) Commit(ctx context.Context, w Writer) error {
	recs := w.Records()
	if len(recs) == 0 {
		return nil
	}
	return s.b.Append(ctx, w.Stream(), w.Expected(), recs)
}

func (s backendStore) Close() error { return s.b.Close() }

// Snapshot is the encoded state of an aggregate at a sequence.
type Snapshot struct {
	Stream   StreamID
	Sequence int64     // the last event the state covers
	Version  int       // schema version of the state's encoding
	State    []byte    // the state, encoded with the registry's codec
	Time     time.Time // when it was taken, UTC
}

// SnapshotStore keeps at most one snapshot per stream. Implementations must be
// safe for concurrent use.
//
// Get returns an error matching ErrSnapshotNotFound when the stream has none.
// Put stores snap unless the store already holds a snapshot of the stream at a
// later sequence; in that case it stores nothing and returns nil, so an older
// snapshot never replaces a newer one, even between racing writers. Delete
// removes the stream's snapshot; deleting a missing snapshot is not an error.
type SnapshotStore interface {
	Get(ctx context.Context, stream StreamID) (Snapshot, error)
	Put(ctx context.Context, snap Snapshot) error
	Delete(ctx context.Context, stream StreamID) error
}
