package backend

import (
	"context"
	"fmt"
	"iter"
	"time"
)

// Backend is what a database implements: an append-only log of records per
// stream. Implementations must be safe for concurrent use.
//
// Append stores the commit's records all or none, together with the commit
// ID, in one atomic write. It first calls CheckAppend (or checks the same
// rules). If the stream's last sequence is not c.Expected (0 for a new
// stream) it stores nothing and returns an error matching ErrConcurrency
// (normally a *ConflictError); this must hold between any number of writers
// racing in any number of processes. When the write was sent but its answer
// was lost, it returns an error matching ErrUnknownOutcome. A commit of no
// records is a no-op. Append may keep c.Records (their Data and Metadata
// included) rather than copy them, so the caller must not modify them after
// the call; aggregates never do.
//
// Load yields the records of stream with a sequence greater than after, in
// ascending order, each with its commit ID, stopping at the first error
// (which it yields). It streams long histories rather than holding them in
// memory at once, honours ctx, and yields data it cannot read as an error
// matching ErrCorruptStream (normally a *CorruptError) naming the stream.
// Callers validate contiguity, so a backend does not need to. The records
// yielded may share memory with what the backend keeps: callers must not
// modify their Data or Metadata.
//
// Close releases what the backend owns; afterwards every call returns an
// error matching ErrClosed.
type Backend interface {
	Append(ctx context.Context, c Commit) error
	Load(ctx context.Context, stream StreamID, after int64) iter.Seq2[Record, error]
	Close() error
}

// Snapshot is the encoded state of an aggregate at a sequence.
type Snapshot struct {
	Stream   StreamID
	Sequence int64     // the last event the state covers, 1 or more
	Version  int       // schema version of the state's encoding
	State    []byte    // the encoded state (opaque to the store)
	Time     time.Time // when it was taken
}

// CheckSnapshot validates a snapshot before a SnapshotStore writes it: a
// valid stream, a sequence of 1 or more and a time between MinTime and
// MaxTime. Errors wrap ErrInvalidSnapshot or ErrInvalidStream.
func CheckSnapshot(s Snapshot) error {
	if err := s.Stream.Validate(); err != nil {
		return err
	}
	if s.Sequence < 1 {
		return fmt.Errorf("%w: snapshot of %s at sequence %d (want 1 or more)", ErrInvalidSnapshot, s.Stream, s.Sequence)
	}
	if s.Time.Before(MinTime) || s.Time.After(MaxTime) {
		return fmt.Errorf("%w: snapshot of %s has time %v, outside years 1 to 9999", ErrInvalidSnapshot, s.Stream, s.Time)
	}
	return nil
}

// SnapshotStore keeps at most one snapshot per stream. Implementations must
// be safe for concurrent use.
//
// Get returns an error matching ErrSnapshotNotFound when the stream has
// none, and one matching ErrInvalidSnapshot when what is stored cannot be
// read as a snapshot. Put calls CheckSnapshot, then stores snap unless the
// store holds a snapshot of the stream at a later sequence; in that case it
// stores nothing and returns nil, so an older snapshot never replaces a
// newer one, even between racing writers. A snapshot at the same sequence
// replaces the stored one. Delete removes the stream's snapshot; deleting a
// missing snapshot is not an error.
type SnapshotStore interface {
	Get(ctx context.Context, stream StreamID) (Snapshot, error)
	Put(ctx context.Context, snap Snapshot) error
	Delete(ctx context.Context, stream StreamID) error
}

// Position is a place in a Feed, produced by the store that serves it and
// opaque to everyone else: it is comparable with ==, and it serialises as
// the string it is. Positions of one feed sort like the feed: p < q as
// strings exactly when p comes before q (stores encode them in fixed width).
// The zero Position, "", comes before every commit.
type Position string

// FeedCommit is a commit read from a Feed, with its position in the feed.
type FeedCommit struct {
	Commit
	Position Position
}

// Feed is an optional Backend capability: every commit of every stream, in
// one total order consistent with each stream's order.
//
// ReadFeed yields the commits after the position after, in feed order, and
// stops when it reaches the end of what is currently readable. It never
// yields a commit at a position before one it has already yielded to any
// caller; in particular it never skips a commit that becomes visible later
// (a transaction still in flight when a later one commits): such a store
// holds back the later commits until the earlier ones are visible or
// rolled back. A position it did not produce yields an error matching
// ErrInvalidPosition.
//
// WaitFeed blocks until commits after the position after may be readable,
// or ctx is done (it then returns ctx's error). It may return early, with
// nil, for no reason (a poll interval): callers read again, then wait
// again.
type Feed interface {
	ReadFeed(ctx context.Context, after Position) iter.Seq2[FeedCommit, error]
	WaitFeed(ctx context.Context, after Position) error
}

// CommitRef names one stored commit.
type CommitRef struct {
	Stream      StreamID
	First, Last int64 // the commit's first and last sequence
	ID          string
}

// Outbox is an optional Backend capability: the commits not yet handed to a
// publisher. The commit's own document, item or row carries the pending
// mark, written in the same atomic write as the events, so no transaction
// spans two records.
//
// Pending yields at most limit pending commits (limit <= 0: a store
// default). Within one stream it yields them in stream order, and it never
// yields a commit while an earlier commit of the same stream is pending but
// not yielded before it. Across streams the order is roughly by commit time.
//
// MarkPublished clears the pending mark of the commits named. Marking a
// commit twice, or one that does not exist, is not an error.
type Outbox interface {
	Pending(ctx context.Context, limit int) iter.Seq2[Commit, error]
	MarkPublished(ctx context.Context, refs []CommitRef) error
}

// Checkpoints is an optional capability of a store that can also keep named
// positions (of a relay or a projection reading a Feed), so that they live
// next to the data. LoadCheckpoint returns "" and no error for a name never
// saved. SaveCheckpoint stores pos under name, replacing the previous
// value. Implementations must be safe for concurrent use.
type Checkpoints interface {
	LoadCheckpoint(ctx context.Context, name string) (Position, error)
	SaveCheckpoint(ctx context.Context, name string, pos Position) error
}
