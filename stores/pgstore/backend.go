package pgstore

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aggregatekit/eventsourcing/backend"
)

// Backend is an eventsourcing.Backend storing one row per event in a
// PostgreSQL table, with a backend.Feed and backend.Checkpoints (see the
// package documentation for the schema and the guarantees). It is safe for
// concurrent use by multiple goroutines, and any number of Backends, in any
// number of processes, may share a schema.
type Backend struct {
	pool   *pgxpool.Pool
	owned  bool // Close closes pool
	cfg    config
	t      tables
	sql    statements
	closed atomic.Bool
	lis    *listener
	*notifier
}

// statements are the SQL texts of a Backend, built once for its schema.
type statements struct {
	// appendFirst1, appendNext1, appendFirstN and appendNextN store a
	// commit of one or of several events, to a new stream or after an
	// existing event. Their parameters are the same: aggregate, key,
	// expected, commit ID, then event type, data, time, nanoseconds and
	// metadata (arrays of them for the N forms).
	appendFirst1, appendNext1, appendFirstN, appendNextN                 string
	load, feed, feedBound, xmin, feedReady, loadPoint, savePoint, notify string
}

func newStatements(t tables) statements {
	// A commit is one INSERT, in one implicit transaction, so it is stored
	// whole or not at all. The primary key on (aggregate, key, seq)
	// refuses an expected sequence at or before the head (an event already
	// holds expected+1); the EXISTS clause, an expected sequence beyond the
	// head (no event holds it), in which case nothing is inserted. Neither
	// is a read followed by a write: the unique index decides between
	// racing writers, and an event that exists keeps existing.
	const cols = ` (aggregate, key, seq, commit_id, event_type, data, time, time_ns, metadata) `
	exists := ` WHERE EXISTS (SELECT FROM ` + t.events + ` WHERE aggregate = $1 AND key = $2 AND seq = $3)`
	one := `INSERT INTO ` + t.events + cols + `SELECT $1, $2, $3::bigint + 1, $4, $5, $6, $7, $8, $9`
	many := `INSERT INTO ` + t.events + cols + `SELECT $1, $2, $3::bigint + r.n, $4, r.event_type, r.data, r.time, r.time_ns, r.metadata
FROM unnest($5::text[], $6::bytea[], $7::timestamptz[], $8::smallint[], $9::bytea[])
	WITH ORDINALITY AS r(event_type, data, time, time_ns, metadata, n)`
	return statements{
		appendFirst1: one,
		appendNext1:  one + exists,
		appendFirstN: many + ` ORDER BY r.n`,
		appendNextN:  many + exists + ` ORDER BY r.n`,
		load: `SELECT seq, commit_id, event_type, data, time, time_ns, metadata FROM ` + t.events + `
WHERE aggregate = $1 AND key = $2 AND seq > $3 ORDER BY seq LIMIT $4`,
		// Every transaction below the bound (see feedBound) has ended, so no
		// row below it can appear later.
		feed: `SELECT tx, position, aggregate, key, seq, commit_id, event_type, data, time, time_ns, metadata FROM ` + t.events + `
WHERE (tx, position) > ($1::xid8, $2::bigint) AND tx < $3::xid8
ORDER BY tx, position LIMIT $4`,
		// pg_current_snapshot is the statement's snapshot: its xmin is the
		// oldest transaction still running, anywhere in the cluster, and
		// max(tx) the newest transaction whose commit this statement sees.
		feedBound: `SELECT pg_snapshot_xmin(pg_current_snapshot()),
	(SELECT max(tx) FROM ` + t.events + ` WHERE (tx, position) > ($1::xid8, $2::bigint))`,
		xmin: `SELECT pg_snapshot_xmin(pg_current_snapshot())`,
		feedReady: `SELECT EXISTS (SELECT FROM ` + t.events + `
WHERE (tx, position) > ($1::xid8, $2::bigint) AND tx < pg_snapshot_xmin(pg_current_snapshot()))`,
		loadPoint: `SELECT position FROM ` + t.points + ` WHERE name = $1`,
		savePoint: `INSERT INTO ` + t.points + ` (name, position) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated = now()`,
		notify: `SELECT pg_notify($1, '')`,
	}
}

// NewBackend returns a Backend using pool, which the caller owns: Close
// does not close it. It first makes sure the schema exists and is of
// SchemaVersion (see EnsureSchema and WithoutSchemaCreation), so a Backend
// never runs without it; that costs one query when the schema exists.
func NewBackend(ctx context.Context, pool *pgxpool.Pool, opts ...Option) (*Backend, error) {
	return newBackend(ctx, pool, false, opts)
}

// Open connects to the database at url (a PostgreSQL URL or keyword/value
// connection string, as pgxpool.ParseConfig reads it, pool settings
// included) and returns a Backend that owns the pool: Close closes it. ctx
// bounds the connection and the schema check. For full control of the pool,
// build it yourself and use NewBackend; Pool returns the pool for a
// SnapshotStore on the same database.
func Open(ctx context.Context, url string, opts ...Option) (*Backend, error) {
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("pgstore: open: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: open: %w", err)
	}
	b, err := newBackend(ctx, pool, true, opts)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return b, nil
}

func newBackend(ctx context.Context, pool *pgxpool.Pool, owned bool, opts []Option) (*Backend, error) {
	cfg, t, err := prepare(ctx, pool, opts)
	if err != nil {
		return nil, err
	}
	b := &Backend{
		pool:  pool,
		owned: owned,
		cfg:   cfg,
		t:     t,
		sql:   newStatements(t),
		lis:   newListener(pool, t.channel, cfg.pollInterval),
	}
	b.notifier = newNotifier(pool, t.channel, b.sql.notify, cfg.notify, b.lis)
	return b, nil
}

// Pool returns the pool the Backend uses. If the Backend was made by Open,
// it owns the pool and Close closes it; the caller may share it (for a
// SnapshotStore, say) until then.
func (b *Backend) Pool() *pgxpool.Pool { return b.pool }

// Schema returns the name of the schema holding the Backend's tables.
func (b *Backend) Schema() string { return b.t.schema }

// Append stores the commit's events, with its ID, if the stream's last
// sequence is c.Expected. If it is not, Append returns a
// *backend.ConflictError and stores nothing; this holds between any number
// of racing writers in any number of processes, because the database
// decides it (the primary key on stream and sequence, and the check that an
// event holds the expected sequence, in the same statement). When the
// statement was sent but its answer was lost (a dropped connection, the
// server killed, ctx done while waiting), the error matches
// eventsourcing.ErrUnknownOutcome: the commit may be stored. A statement
// the server refused, or one never sent, stored nothing and returns that
// error (with ctx's error, if it was done, still matching it).
//
// A commit larger than the size limit (DefaultMaxCommitSize,
// WithMaxCommitSize) is refused with an *eventsourcing.CommitTooLargeError
// before anything is sent.
//
// Round trips: one. The commit is one INSERT statement in its own implicit
// transaction (not an explicit BEGIN/COMMIT, which would cost two more
// round trips for the same atomicity); pgx prepares it once per connection,
// which costs one more round trip the first time a connection runs it. The
// wake-up for WaitFeed is sent after the commit, by a goroutine that
// coalesces the notifications of many appends into one NOTIFY (see
// WithoutNotify), so no append waits for it.
func (b *Backend) Append(ctx context.Context, c backend.Commit) error {
	if b.closed.Load() {
		return fmt.Errorf("pgstore: append to %s: %w", c.Stream, backend.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pgstore: append to %s: %w", c.Stream, err)
	}
	if err := backend.CheckAppend(c); err != nil {
		return err
	}
	n := len(c.Records)
	if n == 0 {
		return nil
	}
	size := 0
	for _, r := range c.Records {
		size += len(r.Data) + len(r.EventType) + len(c.ID)
	}
	if size > b.cfg.maxCommitSize { // before encoding metadata: refuse a huge commit cheaply
		return &backend.CommitTooLargeError{Stream: c.Stream, Events: n, Size: size, Limit: b.cfg.maxCommitSize}
	}
	var (
		sql  string
		args []any
	)
	if n == 1 {
		r := c.Records[0]
		md, err := encodeMetadata(r.Metadata)
		if err != nil {
			return fmt.Errorf("pgstore: append to %s: encode metadata: %w", c.Stream, err)
		}
		size += len(md)
		data := r.Data
		if data == nil {
			data = []byte{} // nil would be NULL
		}
		ts, ns := splitTime(r.Timestamp)
		sql, args = b.sql.appendFirst1, []any{c.Stream.AggregateType, c.Stream.Key, c.Expected, c.ID, r.EventType, data, ts, ns, md}
	} else {
		types := make([]string, n)
		data := make([][]byte, n)
		times := make([]time.Time, n)
		nanos := make([]int16, n)
		metas := make([][]byte, n)
		var me metadataEncoder
		for i, r := range c.Records {
			md, err := me.encode(r.Metadata)
			if err != nil {
				return fmt.Errorf("pgstore: append to %s: encode metadata of record %d: %w", c.Stream, i, err)
			}
			size += len(md)
			types[i], metas[i] = r.EventType, md
			if data[i] = r.Data; data[i] == nil {
				data[i] = []byte{}
			}
			times[i], nanos[i] = splitTime(r.Timestamp)
		}
		sql, args = b.sql.appendFirstN, []any{c.Stream.AggregateType, c.Stream.Key, c.Expected, c.ID, types, data, times, nanos, metas}
	}
	if c.Expected > 0 {
		if n == 1 {
			sql = b.sql.appendNext1
		} else {
			sql = b.sql.appendNextN
		}
	}
	if size > b.cfg.maxCommitSize {
		return &backend.CommitTooLargeError{Stream: c.Stream, Events: n, Size: size, Limit: b.cfg.maxCommitSize}
	}
	// Acquire first, so that a failure to get a connection (nothing sent)
	// is never mistaken for a lost answer.
	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		return b.wrap(fmt.Errorf("pgstore: append to %s: %w", c.Stream, withCtx(ctx, err)))
	}
	tag, err := conn.Exec(ctx, sql, args...)
	conn.Release()
	if err != nil {
		return b.appendError(ctx, c, err)
	}
	switch inserted := tag.RowsAffected(); inserted {
	case int64(n):
		b.committed()
		return nil
	case 0:
		return &backend.ConflictError{Stream: c.Stream, Expected: c.Expected, Head: -1,
			Reason: "the stream has no event at sequence " + strconv.FormatInt(c.Expected, 10)}
	default: // cannot happen: one statement inserts all rows or none
		return fmt.Errorf("pgstore: append to %s: inserted %d of %d events", c.Stream, inserted, n)
	}
}

// appendError classifies the error of the append statement.
func (b *Backend) appendError(ctx context.Context, c backend.Commit, err error) error {
	op := "pgstore: append to " + c.Stream.String()
	var pe *pgconn.PgError
	switch {
	case isCode(err, codeUniqueViolation) && errors.As(err, &pe) && pe.ConstraintName == "events_pkey":
		return &backend.ConflictError{Stream: c.Stream, Expected: c.Expected, Head: -1,
			Reason: "the stream already has events after sequence " + strconv.FormatInt(c.Expected, 10), Err: err}
	case b.t.schemaError(err) != nil:
		return b.wrap(fmt.Errorf("%s: %w", op, b.t.schemaError(err)))
	case errors.As(err, &pe):
		// The server refused the statement, so its implicit transaction
		// rolled back: nothing is stored.
		return b.wrap(fmt.Errorf("%s: %w", op, err))
	case pgconn.SafeToRetry(err):
		// pgx reports that nothing was sent.
		return b.wrap(fmt.Errorf("%s: %w", op, withCtx(ctx, err)))
	}
	return b.wrap(fmt.Errorf("%s: %w: %w", op, backend.ErrUnknownOutcome, withCtx(ctx, err)))
}

// withCtx returns err, also matching ctx's error if ctx is done and err
// does not match it already (pgx reports some context expiries as its own
// timeout errors).
func withCtx(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w (%w)", err, cerr)
	}
	return err
}

// Load yields the records of stream after the given sequence, in order. It
// reads them a page at a time (WithPageSize, by the primary key), and
// returns each page's connection to the pool before yielding its records,
// so at most a page is held in memory and the caller's loop may use the
// pool. A row that cannot be read as what Append writes yields a
// *backend.CorruptError naming the stream and the row's sequence. It checks
// ctx before every record.
//
// Round trips: one query per page; a stream of n events after the given
// sequence costs n/pageSize+1 queries (rounded down).
func (b *Backend) Load(ctx context.Context, stream backend.StreamID, after int64) iter.Seq2[backend.Record, error] {
	return func(yield func(backend.Record, error) bool) {
		if b.closed.Load() {
			yield(backend.Record{}, fmt.Errorf("pgstore: load %s: %w", stream, backend.ErrClosed))
			return
		}
		if err := stream.Validate(); err != nil {
			yield(backend.Record{}, err)
			return
		}
		after = max(after, 0)
		var recs []backend.Record
		for {
			if err := ctx.Err(); err != nil {
				yield(backend.Record{}, fmt.Errorf("pgstore: load %s: %w", stream, err))
				return
			}
			var err error
			recs, err = b.loadPage(ctx, stream, after, recs[:0])
			for _, r := range recs {
				if cerr := ctx.Err(); cerr != nil {
					yield(backend.Record{}, fmt.Errorf("pgstore: load %s: %w", stream, cerr))
					return
				}
				if !yield(r, nil) {
					return
				}
			}
			if err != nil {
				yield(backend.Record{}, err)
				return
			}
			if len(recs) < b.cfg.pageSize {
				return
			}
			after = recs[len(recs)-1].Sequence
		}
	}
}

// loadPage reads up to a page of records after the given sequence into
// recs. On a damaged row it returns the records before it and the error.
func (b *Backend) loadPage(ctx context.Context, stream backend.StreamID, after int64, recs []backend.Record) ([]backend.Record, error) {
	rows, err := b.pool.Query(ctx, b.sql.load, stream.AggregateType, stream.Key, after, b.cfg.pageSize)
	if err != nil {
		return recs, b.readError(ctx, "load "+stream.String(), err)
	}
	defer rows.Close()
	var md metadataDecoder
	prev := after
	for rows.Next() {
		var (
			r        = backend.Record{Stream: stream}
			ts       time.Time
			ns       int16
			metadata []byte
		)
		if err := rows.Scan(&r.Sequence, &r.CommitID, &r.EventType, &r.Data, &ts, &ns, &metadata); err != nil {
			return recs, b.corrupt(stream, 0, "row after sequence "+strconv.FormatInt(prev, 10), "unreadable columns", err)
		}
		if err := b.decodeRow(&r, ts, ns, metadata, &md); err != nil {
			return recs, err
		}
		if r.Sequence <= prev {
			return recs, b.corrupt(stream, r.Sequence, "", "sequence "+strconv.FormatInt(r.Sequence, 10)+" follows "+strconv.FormatInt(prev, 10), nil)
		}
		prev = r.Sequence
		recs = append(recs, r)
	}
	if err := rows.Err(); err != nil {
		return recs, b.readError(ctx, "load "+stream.String(), err)
	}
	return recs, nil
}

// decodeRow completes r from the columns of its row, checking what Append
// guarantees.
func (b *Backend) decodeRow(r *backend.Record, ts time.Time, ns int16, metadata []byte, md *metadataDecoder) error {
	bad := func(reason string, err error) error { return b.corrupt(r.Stream, r.Sequence, "", reason, err) }
	if r.Sequence < 1 {
		return bad("sequence "+strconv.FormatInt(r.Sequence, 10)+" is not 1 or more", nil)
	}
	if err := backend.ValidEventName(r.EventType); err != nil {
		return bad("unusable event type", err)
	}
	if err := backend.ValidCommitID(r.CommitID); err != nil {
		return bad("unusable commit ID", err)
	}
	t, err := joinTime(ts, ns)
	if err != nil {
		return bad(err.Error(), nil)
	}
	r.Timestamp = t
	if r.Metadata, err = md.decode(metadata); err != nil {
		return bad(err.Error(), nil)
	}
	if err := backend.ValidMetadata(r.Metadata); err != nil {
		return bad("unusable metadata", err)
	}
	if r.Data == nil { // NOT NULL, but the column may have been altered
		return bad("data is NULL", nil)
	}
	return nil
}

func (b *Backend) corrupt(stream backend.StreamID, seq int64, where, reason string, err error) error {
	if where == "" {
		where = "row seq=" + strconv.FormatInt(seq, 10)
	}
	return &backend.CorruptError{Stream: stream, Sequence: seq, Where: "table " + b.t.events + ", " + where, Reason: reason, Err: err}
}

// readError wraps the error of a read.
func (b *Backend) readError(ctx context.Context, op string, err error) error {
	if se := b.t.schemaError(err); se != nil {
		return b.wrap(fmt.Errorf("pgstore: %s: %w", op, se))
	}
	return b.wrap(fmt.Errorf("pgstore: %s: %w", op, withCtx(ctx, err)))
}

// Close makes every later call return an error matching
// eventsourcing.ErrClosed, stops the feed's listener connection, and, if
// the Backend owns its pool (Open), closes the pool, which waits for
// connections in use to be returned. Closing twice is not an error.
func (b *Backend) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	b.lis.close()
	b.notifier.close()
	if b.owned {
		b.pool.Close()
	}
	return nil
}

// wrap marks an operation that failed because the Backend was closed while
// it ran as matching eventsourcing.ErrClosed too.
func (b *Backend) wrap(err error) error {
	if err != nil && b.closed.Load() && !errors.Is(err, backend.ErrClosed) {
		return fmt.Errorf("%w: %w", backend.ErrClosed, err)
	}
	return err
}

var (
	_ backend.Backend     = (*Backend)(nil)
	_ backend.Feed        = (*Backend)(nil)
	_ backend.Checkpoints = (*Backend)(nil)
)
