package eventsourcing

import (
	"errors"
	"fmt"
	"strings"

	"github.com/aggregatekit/eventsourcing/backend"
)

// Outcomes of the store contract, defined in package backend and re-exported
// here so that applications import one package. Each is the same value as
// its backend counterpart, so errors.Is matches either name.
var (
	// ErrConcurrency reports that another writer appended to the stream
	// after the state this commit was based on was loaded. Nothing was
	// stored. Handle retries it under the aggregate's RetryPolicy.
	ErrConcurrency = backend.ErrConcurrency

	// ErrUnknownOutcome reports a commit whose result the store could not
	// learn: the write was (or may have been) sent, but the answer was lost
	// to a dropped connection, a timeout or a server fault. The events may
	// or may not be stored. Handle does not retry it. Repeat the command
	// with the same command ID (WithCommandID) to make it apply exactly
	// once.
	ErrUnknownOutcome = backend.ErrUnknownOutcome

	// ErrClosed reports use of a store after Close.
	ErrClosed = backend.ErrClosed

	// ErrCommitTooLarge reports a commit that exceeds what the store can
	// write atomically. Nothing was stored. See CommitTooLargeError.
	ErrCommitTooLarge = backend.ErrCommitTooLarge

	// ErrCorruptStream reports stored data that cannot be trusted: a gap or
	// a repeat in sequence numbers, a record of another stream, or a record
	// that cannot be decoded. See SequenceError, RecordError and
	// CorruptError.
	ErrCorruptStream = backend.ErrCorruptStream

	// ErrInvalidStream reports an unusable stream identity: an empty key or
	// aggregate type, or one that is too long or contains forbidden
	// characters.
	ErrInvalidStream = backend.ErrInvalidStream

	// ErrInvalidAppend reports a commit whose records are not numbered
	// expected+1, expected+2, ... or do not belong to the target stream.
	ErrInvalidAppend = backend.ErrInvalidAppend

	// ErrInvalidEventName reports an empty, overlong or otherwise unusable
	// event type name.
	ErrInvalidEventName = backend.ErrInvalidEventName

	// ErrInvalidCommitID reports an unusable command ID given to
	// WithCommandID (see ValidCommitID).
	ErrInvalidCommitID = backend.ErrInvalidCommitID

	// ErrInvalidMetadata reports a metadata header that no store can keep
	// exactly: an empty key, or a key or value that is not valid UTF-8.
	// Nothing was stored.
	ErrInvalidMetadata = backend.ErrInvalidMetadata

	// ErrSnapshotNotFound is returned by SnapshotStore.Get when the stream
	// has no snapshot.
	ErrSnapshotNotFound = backend.ErrSnapshotNotFound

	// ErrInvalidSnapshot reports a snapshot that cannot be stored or
	// restored.
	ErrInvalidSnapshot = backend.ErrInvalidSnapshot
)

// Errors of the aggregate layer.
var (
	// ErrUnknownEventType reports a stored event whose type name the registry
	// does not know. See UnknownEventTypeError.
	ErrUnknownEventType = errors.New("eventsourcing: unknown event type")

	// ErrUnregisteredEvent reports an event value (raised by a handler or
	// passed to the codec) whose Go type is not registered.
	ErrUnregisteredEvent = errors.New("eventsourcing: event type not registered")

	// ErrDuplicateEventName reports an attempt to register one type name for
	// two different Go types.
	ErrDuplicateEventName = errors.New("eventsourcing: event name already registered to another type")

	// ErrUnencodableEvent reports an event type the registry's codec cannot
	// store faithfully, such as a struct whose fields are all unexported
	// (the JSON codec would store it as {} and lose every value).
	ErrUnencodableEvent = errors.New("eventsourcing: event type cannot be encoded faithfully")

	// ErrNoReplay reports an event with no Replay method or replay function:
	// stored, it would never change the aggregate's state. Declare events an
	// aggregate deliberately does not apply with IgnoreEvents.
	ErrNoReplay = errors.New("eventsourcing: no replay for event type")

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

	// ErrConcurrentUse reports a call on an aggregate instance while another
	// call on the same instance is running (from another goroutine, or from
	// inside a handler). The second call does nothing. An instance holds one
	// in-memory copy of a stream; use one per goroutine and let the store
	// arbitrate between them.
	ErrConcurrentUse = errors.New("eventsourcing: aggregate instance used concurrently")

	// ErrEncoding reports an event or state that the codec could not encode.
	ErrEncoding = errors.New("eventsourcing: encoding failed")
)

// Typed store outcomes, re-exported from package backend for errors.As.
type (
	// ConflictError details an ErrConcurrency.
	ConflictError = backend.ConflictError
	// CorruptError details stored data a store cannot read (ErrCorruptStream).
	CorruptError = backend.CorruptError
	// SequenceError reports a gap or repeat in a loaded stream (ErrCorruptStream).
	SequenceError = backend.SequenceError
	// CommitTooLargeError details an ErrCommitTooLarge.
	CommitTooLargeError = backend.CommitTooLargeError
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
