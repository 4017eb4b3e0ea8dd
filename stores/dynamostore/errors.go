package dynamodb

import (
	"errors"
	"fmt"
	"strconv"

	es "github.com/aggregatekit/eventsourcing"
)

// Sentinel errors of this package. Errors about events and streams match the
// eventsourcing sentinels instead (ErrConcurrency, ErrCommitTooLarge,
// ErrCorruptStream, ErrClosed, ...).
var (
	// ErrTableSchema reports a table whose key schema is not the one this
	// package needs (see the package documentation). See SchemaError.
	ErrTableSchema = errors.New("dynamodb: table has the wrong key schema")

	// ErrSnapshotTooLarge reports a snapshot whose item would exceed
	// DynamoDB's 400 KB item limit. Nothing was stored.
	ErrSnapshotTooLarge = errors.New("dynamodb: snapshot too large for one item")
)

// SchemaError reports a table whose key schema or key attribute types differ
// from what the package needs. It matches ErrTableSchema. Its fields are not
// changed after it is returned, so it may be shared between goroutines.
type SchemaError struct {
	Table   string
	Problem string // what is wrong, e.g. `sort key is "id", want "seq"`
}

func (e *SchemaError) Error() string {
	return fmt.Sprintf("dynamodb: table %q has the wrong key schema: %s (want partition key %q of type S and sort key %q of type N)",
		e.Table, e.Problem, attrStream, attrSeq)
}

// Is reports whether target is ErrTableSchema.
func (e *SchemaError) Is(target error) bool { return target == ErrTableSchema }

// CorruptItemError reports an item that does not have the layout the package
// writes (a missing attribute, a wrong attribute type, an event count that
// does not match the item's sequence range, ...). It matches
// eventsourcing.ErrCorruptStream. The item is left as it is. Its fields are
// not changed after it is returned, so it may be shared between goroutines.
type CorruptItemError struct {
	Table  string
	Stream string // the item's partition key
	Seq    int64  // the item's sort key or the event's sequence, if known (else 0)
	Reason string
}

func (e *CorruptItemError) Error() string {
	where := ""
	if e.Seq != 0 {
		where = " at sequence " + strconv.FormatInt(e.Seq, 10)
	}
	return fmt.Sprintf("dynamodb: corrupt item in table %q, stream %s%s: %s", e.Table, e.Stream, where, e.Reason)
}

// Is reports whether target is eventsourcing.ErrCorruptStream.
func (e *CorruptItemError) Is(target error) bool { return target == es.ErrCorruptStream }

// conflictError reports an append that lost to another writer.
type conflictError struct {
	stream   es.StreamID
	expected int64
	head     int64 // -1 when unknown (the conditional put failed)
}

func (e *conflictError) Error() string {
	if e.head < 0 {
		return fmt.Sprintf("dynamodb: stream %s already has a commit after sequence %d: %v", e.stream, e.expected, es.ErrConcurrency)
	}
	return fmt.Sprintf("dynamodb: stream %s is at sequence %d, not %d: %v", e.stream, e.head, e.expected, es.ErrConcurrency)
}

func (e *conflictError) Is(target error) bool { return target == es.ErrConcurrency }
