package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/aggregatekit/eventsourcing/backend"
)

// SnapshotStore is a backend.SnapshotStore in the table es_snapshots of a
// Backend's database: one row per stream. It is safe for concurrent use;
// its writes take their turn with the Backend's (one writer at a time).
// It uses the Backend's connections and is closed with it: after the
// Backend's Close, its calls return errors matching backend.ErrClosed.
type SnapshotStore struct {
	b *Backend
}

// NewSnapshotStore returns the snapshot store in b's database. It does no
// I/O: b created its table.
func NewSnapshotStore(b *Backend) *SnapshotStore { return &SnapshotStore{b: b} }

// Get returns the stream's snapshot, or an error matching
// backend.ErrSnapshotNotFound. One indexed query.
func (s *SnapshotStore) Get(ctx context.Context, stream backend.StreamID) (backend.Snapshot, error) {
	op := "get snapshot of " + stream.String()
	if s.b.closed.Load() {
		return backend.Snapshot{}, s.b.closedErr(op)
	}
	var (
		seq, version int64
		state        []byte
		ts           string
	)
	err := s.b.st.getSnapshot.QueryRowContext(ctx, stream.AggregateType, stream.Key).Scan(&seq, &version, &state, &ts)
	if errors.Is(err, sql.ErrNoRows) {
		return backend.Snapshot{}, fmt.Errorf("sqlitestore: %s: %w", op, backend.ErrSnapshotNotFound)
	}
	if err != nil {
		if !s.b.closed.Load() && ctx.Err() == nil && (sqliteCode(err) == sqlite3.SQLITE_CORRUPT || strings.HasPrefix(err.Error(), "sql: Scan error")) {
			// A row that is not what Put writes, or a damaged page.
			return backend.Snapshot{}, fmt.Errorf("sqlitestore: %s: %w: %w", op, backend.ErrInvalidSnapshot, err)
		}
		return backend.Snapshot{}, s.b.wrap(ctx, op, err)
	}
	t, err := decodeTime(ts)
	if err != nil {
		return backend.Snapshot{}, fmt.Errorf("sqlitestore: %s: %w: time: %v", op, backend.ErrInvalidSnapshot, err)
	}
	if seq < 1 || version < math.MinInt || version > math.MaxInt {
		return backend.Snapshot{}, fmt.Errorf("sqlitestore: %s: %w: sequence %d, version %d", op, backend.ErrInvalidSnapshot, seq, version)
	}
	return backend.Snapshot{Stream: stream, Sequence: seq, Version: int(version), State: state, Time: t}, nil
}

// Put stores snap unless the stream's stored snapshot is at a later
// sequence, in one statement (an upsert whose update is conditional on the
// sequence), so an older snapshot never replaces a newer one, even between
// racing writers in several processes.
func (s *SnapshotStore) Put(ctx context.Context, snap backend.Snapshot) error {
	op := "put snapshot of " + snap.Stream.String()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlitestore: %s: %w", op, err)
	}
	if s.b.closed.Load() {
		return s.b.closedErr(op)
	}
	if err := backend.CheckSnapshot(snap); err != nil {
		return err
	}
	state := snap.State
	if state == nil {
		state = []byte{}
	}
	err := s.b.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.StmtContext(ctx, s.b.st.putSnapshot).ExecContext(ctx, snap.Stream.AggregateType, snap.Stream.Key,
			snap.Sequence, int64(snap.Version), state, encodeTime(snap.Time))
		return err
	})
	return s.b.wrap(ctx, op, err)
}

// Delete removes the stream's snapshot; deleting a missing one is not an
// error.
func (s *SnapshotStore) Delete(ctx context.Context, stream backend.StreamID) error {
	op := "delete snapshot of " + stream.String()
	if s.b.closed.Load() {
		return s.b.closedErr(op)
	}
	err := s.b.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.StmtContext(ctx, s.b.st.delSnapshot).ExecContext(ctx, stream.AggregateType, stream.Key)
		return err
	})
	return s.b.wrap(ctx, op, err)
}

var _ backend.SnapshotStore = (*SnapshotStore)(nil)
