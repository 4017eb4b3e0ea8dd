package eventsourcing

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every error returned by this module that a caller may want to
// branch on matches one of these with errors.Is; richer detail is available
// through the typed errors below with errors.As.
var (
	// ErrConcurrency reports that another writer appended to the stream after
	// the state this commit was based on was loaded. Nothing was stored.
	ErrConcurrency = errors.New("eventsourcing: concurrency conflict")

	// ErrUnknownEventType reports a stored event whose type name the registry
	// does not know. See UnknownEventTypeError.
	ErrUnknownEventType = errors.New("eventsourcing: unknown event type")

	// ErrUnregisteredEvent reports an event value (raised by a handler or
	// passed to the codec) whose Go type is not registered.
	ErrUnregisteredEvent = errors.New("eventsourcing: event type not registered")

	// ErrDuplicateEventName reports an attempt to register one type name for
	// two different Go types.
	ErrDuplicateEventName = errors.New("eventsourcing: event name already registered to another type")

	// ErrInvalidEventName reports an empty, overlong or otherwise unusable
	// event type name.
	ErrInvalidEventName = errors.New("eventsourcing: invalid event type name")

	// ErrInvalidWireup reports methods that AutomaticWireup could not accept.
	// See WireupError.
	ErrInvalidWireup = errors.New("eventsourcing: invalid aggregate wire-up")

	// ErrNoHandler reports a command for which the aggregate has no handler.
	ErrNoHandler = errors.New("eventsourcing: no handler for command")

	// ErrInvalidCommand reports a nil command (or a nil pointer command).
	ErrInvalidCommand = errors.New("eventsourcing: invalid command")

	// ErrNotInitialized reports use of an AggregateBase before Initialize, or
	// Initialize with a nil registry, store or state function.
	ErrNotInitialized = errors.New("eventsourcing: aggregate not initialized")

	// ErrInvalidStream reports an unusable stream identity: an empty key or
	// aggregate type, or one that is too long or contains forbidden characters.
	ErrInvalidStream = errors.New("eventsourcing: invalid stream")

	// ErrCorruptStream reports stored data that cannot be trusted: a gap or a
	// repeat in sequence numbers, a record of another stream, or a record that
	// cannot be decoded. See SequenceError and RecordError.
	ErrCorruptStream = errors.New("eventsourcing: corrupt stream")

	// ErrInvalidAppend reports an Append whose records are not numbered
	// expected+1, expected+2, ... or do not belong to the target stream.
	ErrInvalidAppend = errors.New("eventsourcing: invalid append")

	// ErrCommitTooLarge reports a commit that exceeds what the backend can
	// store atomically. Nothing was stored. See CommitTooLargeError.
	ErrCommitTooLarge = errors.New("eventsourcing: commit too large")

	// ErrUnknownOutcome reports a commit whose result the store could not
	// learn: the write was (or may have been) sent, but the answer was lost
	// to a dropped connection, a timeout or a server fault. The events may or
	// may not be stored. Handle does not retry it; reload the aggregate to
	// find out before repeating a command that must not apply twice.
	ErrUnknownOutcome = errors.New("eventsourcing: outcome of the commit is unknown")

	// ErrClosed reports use of a store after Close.
	ErrClosed = errors.New("eventsourcing: store closed")

	// ErrSnapshotNotFound is returned by SnapshotStore.Get when the stream
	// has no snapshot.
	ErrSnapshotNotFound = errors.New("eventsourcing: snapshot not found")

	// ErrInvalidSnapshot reports a snapshot that cannot be restored: it does
	// not decode, or does not fit the aggregate.
	ErrInvalidSnapshot = errors.New("eventsourcing: invalid snapshot")

	// ErrEncoding reports an event or state that the codec could not encode.
	ErrEncoding = errors.New("eventsourcing: encoding failed")
)

// UnknownEventTypeError names a stored event whose type the registry does not
// know. It matches ErrUnknownEventType with errors.Is.
type UnknownEventTypeError struct {
	Type     string   // the stored type name
	Stream   StreamID // the stream being loaded
	Sequence int64    // the record's sequence number
}

// Error describes the problem.
func (e *UnknownEventTypeError) Error() string {
	return fmt.Sprintf("eventsourcing: unknown event type %q in stream %s at sequence %d (register it, or enable skipping of unknown events)",
		e.Type, e.Stream, e.Sequence)
}

// Is reports whether target is ErrUnknownEventType.
func (e *UnknownEventTypeError) Is(target error) bool { return target == ErrUnknownEventType }

// SequenceError reports a record whose sequence number is not the one a
// contiguous stream requires at that point. It matches ErrCorruptStream.
type SequenceError struct {
	Stream   StreamID
	Expected int64 // the sequence the stream required
	Got      int64 // the sequence the backend returned
}

// Error describes the problem.
func (e *SequenceError) Error() string {
	return fmt.Sprintf("eventsourcing: corrupt stream %s: expected sequence %d, got %d", e.Stream, e.Expected, e.Got)
}

// Is reports whether target is ErrCorruptStream.
func (e *SequenceError) Is(target error) bool { return target == ErrCorruptStream }

// RecordError reports a stored record that could not be decoded or applied.
// It matches ErrCorruptStream and whatever Err matches.
type RecordError struct {
	Stream   StreamID
	Sequence int64
	Type     string
	Err      error
}

// Error describes the problem.
func (e *RecordError) Error() string {
	return fmt.Sprintf("eventsourcing: stream %s, sequence %d, event %q: %v", e.Stream, e.Sequence, e.Type, e.Err)
}

// Is reports whether target is ErrCorruptStream.
func (e *RecordError) Is(target error) bool { return target == ErrCorruptStream }

// Unwrap returns the underlying error.
func (e *RecordError) Unwrap() error { return e.Err }

// CommitTooLargeError reports a commit larger than a backend's atomic write
// limit. It matches ErrCommitTooLarge.
type CommitTooLargeError struct {
	Stream StreamID
	Events int // number of events in the commit
	Size   int // encoded size in bytes, as the backend measures it
	Limit  int // the backend's limit in bytes
}

// Error describes the problem.
func (e *CommitTooLargeError) Error() string {
	return fmt.Sprintf("eventsourcing: commit of %d events to stream %s is %d bytes, over the backend limit of %d bytes",
		e.Events, e.Stream, e.Size, e.Limit)
}

// Is reports whether target is ErrCommitTooLarge.
func (e *CommitTooLargeError) Is(target error) bool { return target == ErrCommitTooLarge }

// WireupError lists every problem AutomaticWireup found in one aggregate type.
// It matches ErrInvalidWireup.
type WireupError struct {
	Type     string   // the aggregate's Go type
	Problems []string // one line per rejected method or condition
}

// Error describes the problem.
func (e *WireupError) Error() string {
	return fmt.Sprintf("eventsourcing: cannot wire up %s: %s", e.Type, strings.Join(e.Problems, "; "))
}

// Is reports whether target is ErrInvalidWireup.
func (e *WireupError) Is(target error) bool { return target == ErrInvalidWireup }
