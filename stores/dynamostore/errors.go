package dynamostore

import (
	"errors"
	"fmt"
)

// Sentinel errors of this package. Errors about commits, streams and
// snapshots match the sentinels of package backend instead (ErrConcurrency
// through a *backend.ConflictError, ErrCorruptStream through a
// *backend.CorruptError, ErrCommitTooLarge, ErrClosed, ErrUnknownOutcome,
// ErrInvalidSnapshot, ...), which package eventsourcing re-exports.
var (
	// ErrTableSchema reports a table that does not have the layout this
	// package needs: the wrong key schema, or no outbox index where one is
	// needed (see the package documentation). See SchemaError.
	ErrTableSchema = errors.New("dynamostore: table does not have the layout this package needs")

	// ErrSnapshotTooLarge reports a snapshot whose item would exceed
	// DynamoDB's 400 KB item limit. Nothing was stored.
	ErrSnapshotTooLarge = errors.New("dynamostore: snapshot too large for one item")
)

// SchemaError reports a table whose key schema, key attribute types or
// outbox index differ from what the package needs. It matches
// ErrTableSchema. Its fields are not changed after it is returned, so it may
// be shared between goroutines.
type SchemaError struct {
	Table   string
	Problem string // what is wrong, e.g. `sort key is "id", want "seq"`
}

// Error describes the problem and the layout the package needs.
func (e *SchemaError) Error() string {
	return fmt.Sprintf("dynamostore: table %q does not have the layout this package needs: %s", e.Table, e.Problem)
}

// Is reports whether target is ErrTableSchema.
func (e *SchemaError) Is(target error) bool { return target == ErrTableSchema }
