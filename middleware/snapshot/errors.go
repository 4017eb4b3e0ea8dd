package snapshot

import (
	"errors"
	"fmt"

	es "github.com/aggregatekit/eventsourcing"
)

var (
	// ErrInvalidConfig reports an unusable argument to New: a nil snapshot
	// store, a zero Policy, EveryN with n < 1, or a nil Predicate function.
	ErrInvalidConfig = errors.New("snapshot: invalid configuration")

	// ErrVersionMismatch reports a stored snapshot whose schema version is not
	// the aggregate's current one (see Versioned). Errors that match it also
	// match eventsourcing.ErrInvalidSnapshot. It is expected after a schema
	// change, until the stream's next snapshot replaces the old one.
	ErrVersionMismatch = errors.New("snapshot: schema version mismatch")

	// ErrAheadOfStream reports a stored snapshot taken at a sequence the
	// stream does not reach: the events it covers are gone (the stream was
	// deleted or truncated behind the snapshot store's back). Errors that
	// match it also match eventsourcing.ErrInvalidSnapshot.
	ErrAheadOfStream = errors.New("snapshot: snapshot is ahead of the stream")
)

// Op names the step of the middleware that failed, in an *Error.
type Op string

// The steps the middleware reports problems from.
const (
	OpGet     Op = "get"     // reading the snapshot store; the load fell back to a full replay
	OpRestore Op = "restore" // the snapshot was unusable (see Error.Err); the load fell back to a full replay
	OpEncode  Op = "encode"  // encoding the state after a commit; no snapshot was written
	OpPut     Op = "put"     // writing the snapshot after a commit; the commit stands
	OpDelete  Op = "delete"  // removing a snapshot found ahead of its stream
)

// Error is what the middleware reports, through the handler given to
// WithErrorHandler and the logger given to WithLogger, when a snapshot could
// not be read, used or written. The command or load that met the problem did
// not fail because of it: the middleware fell back to a full replay, or left
// the snapshot store as it was. Error unwraps to the cause, so errors.Is
// matches eventsourcing.ErrInvalidSnapshot, ErrVersionMismatch,
// ErrAheadOfStream, eventsourcing.ErrEncoding or the snapshot store's error.
type Error struct {
	Op       Op          // the failing step
	Stream   es.StreamID // the aggregate's stream
	Sequence int64       // the snapshot's sequence; 0 when unknown (a failed Get)
	Err      error       // the cause
}

// Error describes the problem.
func (e *Error) Error() string {
	if e.Sequence == 0 {
		return fmt.Sprintf("snapshot: %s %s: %v", e.Op, e.Stream, e.Err)
	}
	return fmt.Sprintf("snapshot: %s %s at sequence %d: %v", e.Op, e.Stream, e.Sequence, e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }
