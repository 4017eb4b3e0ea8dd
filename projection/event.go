package projection

import (
	"errors"
	"fmt"
	"reflect"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/backend"
)

// Position is a place in a Source: a feed position of the store, or the
// JetStream stream sequence of a message, opaque to the runner and kept as
// the checkpoint. Positions of one source sort like the source as strings;
// the zero Position, "", comes before everything.
type Position = backend.Position

// Event is one stored event as a projection receives it: decoded through
// the EventRegistry into its registered Go type, with where it comes from.
type Event struct {
	Stream   es.StreamID // the aggregate's stream
	Sequence int64       // the event's sequence in its stream, from 1
	Type     string      // the stored event type name
	Data     any         // the decoded event: a value of its registered Go type (never a pointer)
	CommitID string      // the ID of the commit that stored it
	Time     time.Time   // the commit time
	Metadata es.Metadata // the commit's headers; read-only, may be nil
	Position Position    // the position of its commit in the source

	ptr reflect.Value // *T holding Data, for handlers that take a pointer
}

// Record returns the event as the stored record it was decoded from,
// without its data bytes.
func (e Event) Record() es.Record {
	return es.Record{Stream: e.Stream, Sequence: e.Sequence, EventType: e.Type, Timestamp: e.Time,
		Metadata: e.Metadata, CommitID: e.CommitID}
}

// ID names one version of a projection: where its checkpoint, the last
// sequence applied per stream and its parked events are kept. A rebuild
// runs a new Version beside the live one; Store.Activate switches readers
// to it. Name and Version are 1 to MaxNameLen bytes of ASCII letters,
// digits, '-' and '_', so that every store and broker can use them as
// they are.
type ID struct {
	Name    string
	Version string
}

// MaxNameLen is the longest Name or Version of an ID, in bytes.
const MaxNameLen = 100

// DefaultVersion is the Version of a projection made without WithVersion.
const DefaultVersion = "1"

// String returns "Name@Version".
func (id ID) String() string { return id.Name + "@" + id.Version }

// Validate reports, wrapping ErrInvalidID, a name or version that is empty,
// longer than MaxNameLen bytes, or holds anything but ASCII letters,
// digits, '-' and '_'.
func (id ID) Validate() error {
	if err := validName("name", id.Name); err != nil {
		return err
	}
	return validName("version", id.Version)
}

func validName(what, s string) error {
	if s == "" || len(s) > MaxNameLen {
		return fmt.Errorf("%w: %s %q (want 1 to %d bytes)", ErrInvalidID, what, s, MaxNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%w: %s %q holds %q (want ASCII letters, digits, '-' and '_')", ErrInvalidID, what, s, c)
		}
	}
	return nil
}

// Errors of the read side. Errors of stores and sources pass through
// wrapped, so they still match the sentinels of package eventsourcing
// (ErrClosed, ErrInvalidPosition through backend, ...).
var (
	// ErrInvalidID reports an unusable projection name or version.
	ErrInvalidID = errors.New("projection: invalid projection ID")

	// ErrGap reports a stream whose next event is not the one after the
	// last the projection applied: events are missing from the source.
	// The runner stops rather than skip them. See GapError.
	ErrGap = errors.New("projection: gap in a stream")

	// ErrPoison reports an event that could not be applied (its handler
	// failed, panicked, or it did not decode) under a policy that stops.
	// See PoisonError.
	ErrPoison = errors.New("projection: event could not be applied")

	// ErrCheckpointMoved reports that a projection's checkpoint changed
	// under a runner: another runner of the same ID committed. The runner
	// reads it again and goes on from there.
	ErrCheckpointMoved = errors.New("projection: checkpoint moved by another runner")

	// ErrNotParked reports a parked event that does not exist (any more).
	ErrNotParked = errors.New("projection: no such parked event")

	// ErrRunning reports a second Run or CatchUp of a Runner while one is
	// running.
	ErrRunning = errors.New("projection: runner already running")

	// ErrTxDone reports use of a Tx after Commit or Rollback.
	ErrTxDone = errors.New("projection: transaction already committed or rolled back")

	// ErrInvalidHandle reports a projection whose methods take a
	// transaction that its store does not provide.
	ErrInvalidHandle = errors.New("projection: handler takes a transaction the store does not provide")
)

// GapError reports a gap: the stream's next event in the source is Got,
// but the last the projection applied is Last, and Got > Last+1. It
// matches ErrGap.
type GapError struct {
	ID       ID
	Stream   es.StreamID
	Last     int64    // the last sequence applied
	Got      int64    // the sequence the source delivered
	Position Position // the position of the commit that holds it
}

// Error describes the gap.
func (e *GapError) Error() string {
	return fmt.Sprintf("projection %s: gap in stream %s: last applied sequence %d, the source delivered %d (at position %q); events %d to %d are missing (rebuild the projection from a complete source)",
		e.ID, e.Stream, e.Last, e.Got, e.Position, e.Last+1, e.Got-1)
}

// Is reports whether target is ErrGap.
func (e *GapError) Is(target error) bool { return target == ErrGap }

// PoisonError reports an event that could not be applied after Attempts
// tries, under a policy that stops. It matches ErrPoison and whatever Err
// matches.
type PoisonError struct {
	ID       ID
	Event    es.Record // the event (without its data)
	Position Position  // the position of its commit
	Attempts int
	Err      error // the last failure
}

// Error describes the failure.
func (e *PoisonError) Error() string {
	return fmt.Sprintf("projection %s: %s event %q at sequence %d (commit %s) failed %d times: %v",
		e.ID, e.Event.Stream, e.Event.EventType, e.Event.Sequence, e.Event.CommitID, e.Attempts, e.Err)
}

// Is reports whether target is ErrPoison.
func (e *PoisonError) Is(target error) bool { return target == ErrPoison }

// Unwrap returns the last failure.
func (e *PoisonError) Unwrap() error { return e.Err }

// Parked is an event the runner set aside after it failed to apply it
// (Policy with Then: Park): the stored record, its position and the last
// error. Runner.Replay applies it again; Runner.Discard drops it.
type Parked struct {
	Stream   es.StreamID
	Sequence int64
	CommitID string
	Position Position // the position of its commit
	Type     string   // the stored event type
	Data     []byte   // the encoded event, as stored
	Metadata es.Metadata
	Time     time.Time // the commit time
	Error    string    // the last failure
	Attempts int       // how often it was tried
	ParkedAt time.Time
}

// Record returns the parked event as a stored record.
func (p Parked) Record() es.Record {
	return es.Record{Stream: p.Stream, Sequence: p.Sequence, EventType: p.Type, Data: p.Data,
		Timestamp: p.Time, Metadata: p.Metadata, CommitID: p.CommitID}
}
