package backend

import (
	"errors"
	"fmt"
	"strconv"
)

// Sentinel errors of the store contract. A store returns errors that match
// them with errors.Is; the root package re-exports each under the same name.
var (
	// ErrConcurrency reports that the stream's last sequence was not the
	// commit's expected one: another writer appended first. Nothing was
	// stored. See ConflictError.
	ErrConcurrency = errors.New("eventsourcing: concurrency conflict")

	// ErrUnknownOutcome reports a commit whose result the store could not
	// learn: the write was (or may have been) sent, but the answer was lost
	// to a dropped connection, a timeout or a server fault. It may or may
	// not be stored. Repeating the command with the same command ID is safe.
	ErrUnknownOutcome = errors.New("eventsourcing: outcome of the commit is unknown")

	// ErrClosed reports use of a store after Close.
	ErrClosed = errors.New("eventsourcing: store closed")

	// ErrCommitTooLarge reports a commit that exceeds what the store can
	// write atomically. Nothing was stored. See CommitTooLargeError.
	ErrCommitTooLarge = errors.New("eventsourcing: commit too large")

	// ErrCorruptStream reports stored data that cannot be trusted: a gap or
	// a repeat in sequence numbers, a record of another stream, a commit
	// that does not have the layout the store writes, or an event that does
	// not decode. See CorruptError and SequenceError.
	ErrCorruptStream = errors.New("eventsourcing: corrupt stream")

	// ErrInvalidStream reports an unusable stream identity (see
	// StreamID.Validate).
	ErrInvalidStream = errors.New("eventsourcing: invalid stream")

	// ErrInvalidAppend reports a commit whose records are not numbered
	// Expected+1, Expected+2, ..., do not belong to its stream or commit, or
	// carry an unusable timestamp (see CheckAppend).
	ErrInvalidAppend = errors.New("eventsourcing: invalid append")

	// ErrInvalidEventName reports an empty, overlong or otherwise unusable
	// event type name (see ValidEventName).
	ErrInvalidEventName = errors.New("eventsourcing: invalid event type name")

	// ErrInvalidCommitID reports an unusable commit or command ID (see
	// ValidCommitID).
	ErrInvalidCommitID = errors.New("eventsourcing: invalid commit ID")

	// ErrInvalidMetadata reports a metadata header no store can keep
	// exactly (see ValidMetadata). Nothing was stored.
	ErrInvalidMetadata = errors.New("eventsourcing: invalid metadata")

	// ErrSnapshotNotFound is returned by SnapshotStore.Get when the stream
	// has no snapshot.
	ErrSnapshotNotFound = errors.New("eventsourcing: snapshot not found")

	// ErrInvalidSnapshot reports a snapshot that cannot be stored or
	// restored: a negative sequence, a stored snapshot that does not decode,
	// does not fit the aggregate, or cannot prove it is the library's own
	// output for its stream and sequence.
	ErrInvalidSnapshot = errors.New("eventsourcing: invalid snapshot")

	// ErrInvalidPosition reports a feed position or checkpoint that the
	// store did not produce.
	ErrInvalidPosition = errors.New("eventsourcing: invalid feed position")
)

// ConflictError is the error every store returns for a lost optimistic
// concurrency check. It matches ErrConcurrency and unwraps to the database's
// own error, if any.
type ConflictError struct {
	Stream   StreamID
	Expected int64  // the sequence the commit expected to follow
	Head     int64  // the stream's head as the store saw it; -1 if unknown
	Reason   string // optional detail from the store, e.g. "another commit holds sequence 5"
	Err      error  // optional database error (a duplicate key, a failed condition)
}

// Error describes the conflict.
func (e *ConflictError) Error() string {
	msg := "eventsourcing: concurrency conflict: append to " + e.Stream.String() + " after sequence " + strconv.FormatInt(e.Expected, 10)
	switch {
	case e.Reason != "":
		msg += ": " + e.Reason
	case e.Head >= 0:
		msg += ": the stream is at sequence " + strconv.FormatInt(e.Head, 10)
	default:
		msg += ": another writer appended first"
	}
	return msg
}

// Is reports whether target is ErrConcurrency.
func (e *ConflictError) Is(target error) bool { return target == ErrConcurrency }

// Unwrap returns the database's error, if any.
func (e *ConflictError) Unwrap() error { return e.Err }

// CorruptError is the error every store returns for stored data it cannot
// read as what it writes: a document, item or row with a missing or mistyped
// field, a count of events that does not match its sequences, a record of
// another stream. The data is left as it is. It matches ErrCorruptStream.
type CorruptError struct {
	Stream   StreamID
	Sequence int64  // the commit's or event's sequence, if known (else 0)
	Where    string // the store's name for the damaged unit, e.g. `table "events", item seq=5`
	Reason   string // what is wrong
	Err      error  // optional underlying error
}

// Error describes the damage.
func (e *CorruptError) Error() string {
	msg := "eventsourcing: corrupt stream " + e.Stream.String()
	if e.Sequence != 0 {
		msg += " at sequence " + strconv.FormatInt(e.Sequence, 10)
	}
	if e.Where != "" {
		msg += " (" + e.Where + ")"
	}
	msg += ": " + e.Reason
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is reports whether target is ErrCorruptStream.
func (e *CorruptError) Is(target error) bool { return target == ErrCorruptStream }

// Unwrap returns the underlying error, if any.
func (e *CorruptError) Unwrap() error { return e.Err }

// SequenceError reports a record whose sequence number is not the one a
// contiguous stream requires at that point. It matches ErrCorruptStream.
type SequenceError struct {
	Stream   StreamID
	Expected int64 // the sequence the stream required
	Got      int64 // the sequence the store returned
}

// Error describes the problem.
func (e *SequenceError) Error() string {
	return fmt.Sprintf("eventsourcing: corrupt stream %s: expected sequence %d, got %d", e.Stream, e.Expected, e.Got)
}

// Is reports whether target is ErrCorruptStream.
func (e *SequenceError) Is(target error) bool { return target == ErrCorruptStream }

// CommitTooLargeError reports a commit larger than a store's atomic write
// limit. Nothing was stored. It matches ErrCommitTooLarge.
type CommitTooLargeError struct {
	Stream StreamID
	Events int // number of events in the commit
	Size   int // encoded size in bytes, as the store measures it
	Limit  int // the store's limit in bytes
}

// Error describes the problem.
func (e *CommitTooLargeError) Error() string {
	return fmt.Sprintf("eventsourcing: commit of %d events to stream %s is %d bytes, over the store's limit of %d bytes",
		e.Events, e.Stream, e.Size, e.Limit)
}

// Is reports whether target is ErrCommitTooLarge.
func (e *CommitTooLargeError) Is(target error) bool { return target == ErrCommitTooLarge }
