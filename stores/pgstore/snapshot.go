package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aggregatekit/eventsourcing/backend"
)

// SnapshotStore is an eventsourcing.SnapshotStore keeping one row per
// stream in the snapshots table of the store's schema. It is safe for
// concurrent use by multiple goroutines, and any number of SnapshotStores,
// in any number of processes, may share a schema.
//
// Put is one conditional upsert (INSERT ... ON CONFLICT DO UPDATE ... WHERE
// the stored sequence is not newer), which PostgreSQL applies atomically
// against racing writers, so an older snapshot never replaces a newer one.
// Each operation is one round trip.
type SnapshotStore struct {
	pool          *pgxpool.Pool
	t             tables
	get, put, del string
}

// NewSnapshotStore returns a SnapshotStore using pool, which the caller
// owns. Like NewBackend it first makes sure the schema exists and is of
// SchemaVersion (EnsureSchema; WithoutSchemaCreation only verifies); of the
// options, only WithSchema and WithoutSchemaCreation apply.
func NewSnapshotStore(ctx context.Context, pool *pgxpool.Pool, opts ...Option) (*SnapshotStore, error) {
	_, t, err := prepare(ctx, pool, opts)
	if err != nil {
		return nil, err
	}
	return &SnapshotStore{
		pool: pool,
		t:    t,
		get:  `SELECT seq, version, state, time, time_ns FROM ` + t.snapshots + ` WHERE aggregate = $1 AND key = $2`,
		put: `INSERT INTO ` + t.snapshots + ` AS s (aggregate, key, seq, version, state, time, time_ns)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (aggregate, key) DO UPDATE
SET seq = excluded.seq, version = excluded.version, state = excluded.state, time = excluded.time, time_ns = excluded.time_ns
WHERE excluded.seq >= s.seq`,
		del: `DELETE FROM ` + t.snapshots + ` WHERE aggregate = $1 AND key = $2`,
	}, nil
}

// Get returns the stream's snapshot, an error matching
// eventsourcing.ErrSnapshotNotFound if it has none, or one matching
// eventsourcing.ErrInvalidSnapshot if the stored row cannot be read as what
// Put writes.
func (s *SnapshotStore) Get(ctx context.Context, stream backend.StreamID) (backend.Snapshot, error) {
	if err := stream.Validate(); err != nil {
		return backend.Snapshot{}, err
	}
	var (
		snap    = backend.Snapshot{Stream: stream}
		version int64
		ts      time.Time
		ns      int16
	)
	err := s.pool.QueryRow(ctx, s.get, stream.AggregateType, stream.Key).Scan(&snap.Sequence, &version, &snap.State, &ts, &ns)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return backend.Snapshot{}, fmt.Errorf("pgstore: snapshot of %s: %w", stream, backend.ErrSnapshotNotFound)
	case err != nil:
		return backend.Snapshot{}, s.error(ctx, "get snapshot of "+stream.String(), err)
	}
	bad := func(reason string) error {
		return fmt.Errorf("%w: pgstore: snapshot of %s (table %s): %s", backend.ErrInvalidSnapshot, stream, s.t.snapshots, reason)
	}
	if snap.Sequence < 1 {
		return backend.Snapshot{}, bad(fmt.Sprintf("sequence %d is not 1 or more", snap.Sequence))
	}
	if version < math.MinInt || version > math.MaxInt {
		return backend.Snapshot{}, bad(fmt.Sprintf("version %d does not fit an int", version))
	}
	snap.Version = int(version)
	if snap.Time, err = joinTime(ts, ns); err != nil {
		return backend.Snapshot{}, bad(err.Error())
	}
	return snap, nil
}

// Put stores snap unless the stream's stored snapshot is at a later
// sequence (then it stores nothing and returns nil). A snapshot at the same
// sequence replaces the stored one.
func (s *SnapshotStore) Put(ctx context.Context, snap backend.Snapshot) error {
	if err := backend.CheckSnapshot(snap); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pgstore: put snapshot of %s: %w", snap.Stream, err)
	}
	state := snap.State
	if state == nil {
		state = []byte{}
	}
	ts, ns := splitTime(snap.Time)
	if _, err := s.pool.Exec(ctx, s.put, snap.Stream.AggregateType, snap.Stream.Key, snap.Sequence, int64(snap.Version), state, ts, ns); err != nil {
		return s.error(ctx, "put snapshot of "+snap.Stream.String(), err)
	}
	return nil
}

// Delete removes the stream's snapshot; deleting a missing one is not an
// error.
func (s *SnapshotStore) Delete(ctx context.Context, stream backend.StreamID) error {
	if err := stream.Validate(); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, s.del, stream.AggregateType, stream.Key); err != nil {
		return s.error(ctx, "delete snapshot of "+stream.String(), err)
	}
	return nil
}

func (s *SnapshotStore) error(ctx context.Context, op string, err error) error {
	if se := s.t.schemaError(err); se != nil {
		return fmt.Errorf("pgstore: %s: %w", op, se)
	}
	return fmt.Errorf("pgstore: %s: %w", op, withCtx(ctx, err))
}

var _ backend.SnapshotStore = (*SnapshotStore)(nil)
