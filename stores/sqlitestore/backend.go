package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/aggregatekit/eventsourcing/backend"
)

// Backend is a backend.Backend over an SQLite database, with a
// backend.Feed and backend.Checkpoints. Use it through
// eventsourcing.NewStore; NewSnapshotStore adds snapshots in the same
// database.
//
// A Backend is safe for concurrent use by multiple goroutines. It runs its
// writes one at a time (SQLite allows one writer per database), so
// goroutines racing to append get success or a *backend.ConflictError,
// never SQLite's "database is locked"; loads and feed reads run beside the
// writer on other connections of the pool. Other Backends and other
// processes may use the same file: their writes wait for each other's
// (up to the busy timeout, see WithBusyTimeout).
type Backend struct {
	db    *sql.DB
	owned bool   // Open made db: Close closes it
	name  string // the file, for messages
	cfg   config

	writer    chan struct{} // holds a token while a write runs
	closed    atomic.Bool
	done      chan struct{} // closed by Close
	closeOnce sync.Once
	closeErr  error

	mu      sync.Mutex
	changed chan struct{} // closed and replaced after every commit

	heads heads       // streams' known heads, to refuse stale commits early
	cache recordCache // streams' records loaded recently

	st statements
}

// statements are prepared once per Backend; database/sql prepares each on
// a connection the first time it runs there.
type statements struct {
	insert, exists, head, load, feed, last *sql.Stmt
	loadCheckpoint, saveCheckpoint         *sql.Stmt
	getSnapshot, putSnapshot, delSnapshot  *sql.Stmt
}

const eventColumns = `aggregate_type, aggregate_key, sequence, commit_first, commit_last, commit_id, event_type, data, time, metadata`

var statementText = map[string]string{
	"insert": `INSERT INTO es_events (` + eventColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
	"exists": `SELECT EXISTS (SELECT 1 FROM es_events WHERE aggregate_type = ? AND aggregate_key = ? AND sequence = ?)`,
	"head":   `SELECT coalesce(max(sequence), 0) FROM es_events WHERE aggregate_type = ? AND aggregate_key = ? AND sequence < ?`,
	"load": `SELECT sequence, commit_id, event_type, data, time, metadata FROM es_events
		WHERE aggregate_type = ? AND aggregate_key = ? AND sequence > ? ORDER BY sequence LIMIT ?`,
	"feed": `SELECT position, ` + eventColumns + ` FROM es_events
		WHERE position > ? ORDER BY position LIMIT ?`,
	"last":           `SELECT coalesce(max(position), 0) FROM es_events`,
	"loadCheckpoint": `SELECT position FROM es_checkpoints WHERE name = ?`,
	"saveCheckpoint": `INSERT INTO es_checkpoints (name, position) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET position = excluded.position`,
	"getSnapshot": `SELECT sequence, version, state, time FROM es_snapshots WHERE aggregate_type = ? AND aggregate_key = ?`,
	"putSnapshot": `INSERT INTO es_snapshots (aggregate_type, aggregate_key, sequence, version, state, time)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (aggregate_type, aggregate_key) DO UPDATE SET
			sequence = excluded.sequence, version = excluded.version, state = excluded.state,
			time = excluded.time
		WHERE excluded.sequence >= es_snapshots.sequence`,
	"delSnapshot": `DELETE FROM es_snapshots WHERE aggregate_type = ? AND aggregate_key = ?`,
}

// Open opens the SQLite database file at path, creating it (but not its
// directory) if it does not exist, and returns a Backend that owns it:
// Close closes the database. It sets the connections' busy timeout and
// synchronous level (see WithBusyTimeout and WithSynchronous), switches the
// database to write-ahead logging and creates the tables if needed (see
// the package documentation).
//
// Errors name the file and match ErrCannotOpen (a missing directory, no
// permission), ErrNotDatabase, ErrSchemaVersion, ErrLocked (another
// process holds the file locked beyond the busy timeout) or ErrReadOnly;
// none of them changes the file.
func Open(ctx context.Context, path string, opts ...Option) (*Backend, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: open: empty path", ErrCannotOpen)
	}
	cfg := newConfig(opts)
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("%w: open %s: %w", ErrCannotOpen, path, err)
	}
	db, err := sql.Open("sqlite", dataSourceName(abs, cfg))
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: open %s: %w", abs, err)
	}
	db.SetMaxOpenConns(cfg.maxConns)
	db.SetMaxIdleConns(cfg.maxConns)
	b, err := newBackend(ctx, db, true, abs, cfg)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return b, nil
}

// dataSourceName returns the modernc.org/sqlite name of the file at the
// absolute path abs: a file: URI (so that any character in the path is
// escaped, not taken for a parameter) with the per-connection settings.
func dataSourceName(abs string, cfg config) string {
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a volume name: file:///C:/dir/app.db
	}
	u := url.URL{Scheme: "file", Path: p}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(cfg.busyTimeout.Milliseconds(), 10)+")")
	q.Add("_pragma", "synchronous("+cfg.synchronous.pragma()+")")
	u.RawQuery = q.Encode()
	return u.String()
}

// NewBackend returns a Backend over db, a database/sql handle of the
// driver modernc.org/sqlite (driver name "sqlite") that the caller owns and
// closes: Close does not close it. Like Open, it switches the database to
// write-ahead logging and creates the tables if needed.
//
// The connections are configured by db's data source name: set a busy
// timeout there ("_pragma=busy_timeout(5000)") if other processes write to
// the file, so that readers wait for their locks too; the Backend's own
// writes retry for the busy timeout of WithBusyTimeout either way. The
// options that configure connections (WithSynchronous, WithMaxConns) are
// refused with an error.
func NewBackend(ctx context.Context, db *sql.DB, opts ...Option) (*Backend, error) {
	if db == nil {
		return nil, errors.New("sqlitestore: NewBackend: nil *sql.DB")
	}
	cfg := newConfig(opts)
	if err := cfg.checkForDB(); err != nil {
		return nil, err
	}
	return newBackend(ctx, db, false, "database", cfg)
}

func newBackend(ctx context.Context, db *sql.DB, owned bool, name string, cfg config) (*Backend, error) {
	b := &Backend{db: db, owned: owned, name: name, cfg: cfg, writer: make(chan struct{}, 1), done: make(chan struct{}), changed: make(chan struct{}),
		cache: recordCache{limit: cfg.cacheSize}}
	op := "open " + name
	if err := db.PingContext(ctx); err != nil {
		return nil, wrapErr(ctx, op, err)
	}
	// Refuse a newer schema before changing anything, the journal mode
	// included.
	v, err := readVersion(ctx, db)
	if err == nil {
		err = checkVersion(v)
	}
	if err != nil {
		return nil, wrapErr(ctx, op, err)
	}
	var mode string
	if err := db.QueryRowContext(ctx, `PRAGMA journal_mode = WAL`).Scan(&mode); err != nil {
		return nil, wrapErr(ctx, op+": set write-ahead logging", err)
	}
	if mode != "wal" {
		return nil, fmt.Errorf("sqlitestore: %s: the database cannot use write-ahead logging (its journal mode stays %q; an in-memory database cannot)", op, mode)
	}
	if err := b.write(ctx, func(tx *sql.Tx) error { return migrate(ctx, tx) }); err != nil {
		return nil, wrapErr(ctx, op+": create tables", err)
	}
	prepared := map[string]*sql.Stmt{}
	for k, text := range statementText {
		s, err := db.PrepareContext(ctx, text)
		if err != nil {
			for _, s := range prepared {
				_ = s.Close()
			}
			return nil, wrapErr(ctx, op+": prepare statements", err)
		}
		prepared[k] = s
	}
	b.st = statements{
		insert: prepared["insert"], exists: prepared["exists"], head: prepared["head"], load: prepared["load"],
		feed: prepared["feed"], last: prepared["last"],
		loadCheckpoint: prepared["loadCheckpoint"], saveCheckpoint: prepared["saveCheckpoint"],
		getSnapshot: prepared["getSnapshot"], putSnapshot: prepared["putSnapshot"], delSnapshot: prepared["delSnapshot"],
	}
	return b, nil
}

// DB returns the database handle the Backend uses, to keep read models or
// other tables in the same file. Writes through it are not serialised with
// the Backend's: they take their turn through SQLite's lock, waiting up to
// the connections' busy timeout (Open sets one) before failing with
// SQLite's "database is locked".
func (b *Backend) DB() *sql.DB { return b.db }

// Close releases the Backend's prepared statements and, if Open made the
// database handle, closes it. Later calls return errors matching
// backend.ErrClosed. Close is idempotent.
func (b *Backend) Close() error {
	b.closeOnce.Do(func() {
		b.closed.Store(true)
		close(b.done)
		for _, s := range []*sql.Stmt{b.st.insert, b.st.exists, b.st.head, b.st.load, b.st.feed, b.st.last,
			b.st.loadCheckpoint, b.st.saveCheckpoint, b.st.getSnapshot, b.st.putSnapshot, b.st.delSnapshot} {
			if s != nil {
				_ = s.Close()
			}
		}
		if b.owned {
			b.closeErr = b.db.Close()
		}
	})
	return b.closeErr
}

func (b *Backend) closedErr(op string) error {
	return fmt.Errorf("sqlitestore: %s: %w", op, backend.ErrClosed)
}

// errUnknown marks a COMMIT that failed in a way that may have left the
// transaction durable (an I/O error while syncing the log).
type errUnknown struct{ err error }

func (e errUnknown) Error() string { return e.err.Error() }
func (e errUnknown) Unwrap() []error {
	return []error{backend.ErrUnknownOutcome, e.err}
}

// write runs fn in a write transaction: one at a time per Backend, retried
// while another connection holds the write lock (up to the busy timeout),
// committed unless fn fails or ctx ends first. fn must only use tx, and
// may run more than once.
func (b *Backend) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case b.writer <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-b.done:
		return backend.ErrClosed
	}
	defer func() { <-b.writer }()
	deadline := time.Now().Add(b.cfg.busyTimeout)
	delay := time.Millisecond
	for {
		if b.closed.Load() {
			return backend.ErrClosed
		}
		err := b.writeOnce(ctx, fn)
		if err == nil || !isBusy(err) || time.Now().Add(delay).After(deadline) {
			return err
		}
		// Another connection or process holds the write lock and this
		// connection has no busy timeout of its own (or it ran out): wait
		// and try again.
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w: %w", ctx.Err(), err)
		case <-b.done:
			t.Stop()
			return backend.ErrClosed
		}
		delay = min(delay*2, 50*time.Millisecond)
	}
}

func (b *Backend) writeOnce(ctx context.Context, fn func(tx *sql.Tx) error) error {
	// The wait for a connection honours ctx. The transaction's context is
	// never cancelled: database/sql would roll back in the background,
	// racing with COMMIT, and the driver would interrupt a COMMIT that is
	// half done. Statements inside use ctx, and ctx is checked once more
	// before COMMIT.
	conn, err := b.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	tx, err := conn.BeginTx(context.WithoutCancel(ctx), nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := ctx.Err(); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		switch sqliteCode(err) {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CONSTRAINT,
			sqlite3.SQLITE_TOOBIG, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_NOMEM:
			return err // the driver rolled back: nothing is stored
		}
		return errUnknown{err}
	}
	return nil
}

// notify wakes the WaitFeed calls of this Backend.
func (b *Backend) notify() {
	b.mu.Lock()
	close(b.changed)
	b.changed = make(chan struct{})
	b.mu.Unlock()
}

// Append stores the commit's records in one transaction if the stream's
// last sequence is c.Expected, and otherwise stores nothing and returns a
// *backend.ConflictError.
//
// The transaction inserts one row per record; the unique index on (stream,
// sequence) refuses a commit after a head that another commit has moved
// past, and, when c.Expected > 0, one more lookup checks that the record at
// c.Expected exists (an expected sequence ahead of the head collides with
// nothing). Both happen under the write lock, so the check holds between
// any number of writers in any number of processes. The lookup is skipped
// when this Backend has seen the stream reach c.Expected, and a commit
// expecting less than a head it has seen is refused without a transaction
// (see the package documentation).
//
// A commit larger than the limit of WithMaxCommitSize is refused with a
// *backend.CommitTooLargeError before anything is written. A commit whose
// COMMIT failed with an I/O error (a failing disk) returns an error matching
// backend.ErrUnknownOutcome: it may be durable.
func (b *Backend) Append(ctx context.Context, c backend.Commit) error {
	op := "append to " + c.Stream.String()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlitestore: %s: %w", op, err)
	}
	if b.closed.Load() {
		return b.closedErr(op)
	}
	if err := backend.CheckAppend(c); err != nil {
		return err
	}
	if len(c.Records) == 0 {
		return nil
	}
	rows, size, err := encodeRows(c)
	if err != nil {
		return fmt.Errorf("sqlitestore: %s: %w", op, err)
	}
	if size > b.cfg.maxCommitSize {
		return &backend.CommitTooLargeError{Stream: c.Stream, Events: len(c.Records), Size: size, Limit: b.cfg.maxCommitSize}
	}
	if err := b.stale(c); err != nil {
		return err
	}
	err = b.write(ctx, func(tx *sql.Tx) error {
		if err := b.stale(c); err != nil { // a commit while this one waited for its turn
			return err
		}
		return b.insertCommit(ctx, tx, c, rows)
	})
	if err == nil {
		b.heads.note(c.Stream, c.Last())
		b.notify()
		return nil
	}
	var ce *backend.ConflictError
	if errors.As(err, &ce) {
		return ce
	}
	if sqliteCode(err) == sqlite3.SQLITE_TOOBIG {
		return fmt.Errorf("sqlitestore: %s: %w: %w", op, &backend.CommitTooLargeError{Stream: c.Stream, Events: len(c.Records), Size: size, Limit: size - 1}, err)
	}
	return b.wrap(ctx, op, err)
}

// stale returns a *backend.ConflictError if the stream is known to be past
// c.Expected.
func (b *Backend) stale(c backend.Commit) error {
	if h := b.heads.known(c.Stream); h > c.Expected {
		return &backend.ConflictError{Stream: c.Stream, Expected: c.Expected, Head: h}
	}
	return nil
}

// encodeRows returns the statement arguments of each record, and the
// commit's size as the limit counts it.
func encodeRows(c backend.Commit) ([][]any, int, error) {
	var enc metaEncoder
	rows := make([][]any, len(c.Records))
	first, last := c.First(), c.Last()
	size := 0
	for i, r := range c.Records {
		md, err := enc.encode(r.Metadata)
		if err != nil {
			return nil, 0, fmt.Errorf("record %d: encode metadata: %w", i, err)
		}
		data := r.Data
		if data == nil {
			data = []byte{} // NULL is not an empty event
		}
		rows[i] = []any{c.Stream.AggregateType, c.Stream.Key, r.Sequence, first, last, c.ID, r.EventType, data,
			encodeTime(r.Timestamp), md}
		size += len(c.Stream.AggregateType) + len(c.Stream.Key) + len(c.ID) + len(r.EventType) + len(data) + len(timeLayout) + 4*8
		if s, ok := md.(string); ok {
			size += len(s)
		}
	}
	return rows, size, nil
}

func (b *Backend) insertCommit(ctx context.Context, tx *sql.Tx, c backend.Commit, rows [][]any) error {
	insert := tx.StmtContext(ctx, b.st.insert)
	for i, args := range rows {
		if _, err := insert.ExecContext(ctx, args...); err != nil {
			if sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT {
				// The unique index on (stream, sequence): another commit
				// holds this sequence.
				return &backend.ConflictError{Stream: c.Stream, Expected: c.Expected, Head: -1,
					Reason: fmt.Sprintf("another commit holds sequence %d", c.Expected+int64(i)+1), Err: err}
			}
			return err
		}
	}
	if c.Expected == 0 || b.heads.known(c.Stream) == c.Expected {
		// A new stream, or one this Backend has seen reach c.Expected:
		// the event at c.Expected exists (stored events are never removed).
		return nil
	}
	var ok bool
	if err := tx.StmtContext(ctx, b.st.exists).QueryRowContext(ctx, c.Stream.AggregateType, c.Stream.Key, c.Expected).Scan(&ok); err != nil {
		return err
	}
	if ok {
		return nil
	}
	// The stored head, below the rows this transaction inserted.
	head := int64(-1)
	reason := ""
	if err := tx.StmtContext(ctx, b.st.head).QueryRowContext(ctx, c.Stream.AggregateType, c.Stream.Key, c.First()).Scan(&head); err != nil {
		head, reason = -1, fmt.Sprintf("the stream has no event %d to follow", c.Expected)
	}
	return &backend.ConflictError{Stream: c.Stream, Expected: c.Expected, Head: head, Reason: reason}
}

// Load yields the stream's records after the sequence after, in order. It
// reads them a batch at a time (WithBatchSize), each batch one indexed
// query whose connection is released before the batch's records are
// yielded, so a long history is never held in memory at once and no
// connection or read transaction stays open while the caller works. A row
// the store cannot read as what it writes yields a *backend.CorruptError
// naming the stream and the row; nothing is modified.
func (b *Backend) Load(ctx context.Context, stream backend.StreamID, after int64) iter.Seq2[backend.Record, error] {
	return func(yield func(backend.Record, error) bool) {
		op := "load " + stream.String()
		if b.closed.Load() {
			yield(backend.Record{}, b.closedErr(op))
			return
		}
		after = max(after, 0)
		if cached := b.cache.get(stream); int64(len(cached)) > after {
			for _, r := range cached[after:] {
				if err := ctx.Err(); err != nil {
					yield(backend.Record{}, fmt.Errorf("sqlitestore: %s: %w", op, err))
					return
				}
				if !yield(r, nil) {
					return
				}
			}
			after = int64(len(cached))
		}
		var md metaDecoder
		batch := make([]backend.Record, 0, min(b.cfg.batchSize, 64))
		for {
			if err := ctx.Err(); err != nil {
				yield(backend.Record{}, fmt.Errorf("sqlitestore: %s: %w", op, err))
				return
			}
			var err error
			batch, err = b.loadBatch(ctx, stream, after, batch[:0], &md)
			if len(batch) > 0 {
				b.heads.note(stream, batch[len(batch)-1].Sequence)
				if err == nil {
					b.cache.add(stream, after, batch)
				}
			}
			// The records before a failure are yielded first.
			for _, r := range batch {
				if err := ctx.Err(); err != nil {
					yield(backend.Record{}, fmt.Errorf("sqlitestore: %s: %w", op, err))
					return
				}
				if !yield(r, nil) {
					return
				}
			}
			if err != nil {
				var ce *backend.CorruptError
				if errors.As(err, &ce) {
					err = fmt.Errorf("sqlitestore: %s: %w", op, err)
				} else {
					err = b.wrap(ctx, op, err)
				}
				yield(backend.Record{}, err)
				return
			}
			if len(batch) < b.cfg.batchSize {
				return
			}
			after = batch[len(batch)-1].Sequence
		}
	}
}

func (b *Backend) loadBatch(ctx context.Context, stream backend.StreamID, after int64, out []backend.Record, md *metaDecoder) ([]backend.Record, error) {
	rows, err := b.st.load.QueryContext(ctx, stream.AggregateType, stream.Key, after, b.cfg.batchSize)
	if err != nil {
		return out, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			seq         int64
			id, typ, ts string
			data        []byte
			meta        *string
		)
		if err := rows.Scan(&seq, &id, &typ, &data, &ts, &meta); err != nil {
			return out, corrupt(stream, 0, 0, "a column has the wrong type", err)
		}
		r, err := decodeRecord(stream, seq, id, typ, data, ts, meta, md)
		if err != nil {
			return out, corrupt(stream, seq, 0, err.Error(), nil)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		if sqliteCode(err) == sqlite3.SQLITE_CORRUPT {
			return out, corrupt(stream, 0, 0, "SQLite reports the database file damaged", err)
		}
		return out, err
	}
	return out, nil
}

func decodeRecord(stream backend.StreamID, seq int64, id, typ string, data []byte, ts string, meta *string, md *metaDecoder) (backend.Record, error) {
	t, err := decodeTime(ts)
	if err != nil {
		return backend.Record{}, fmt.Errorf("timestamp: %w", err)
	}
	m, err := md.decode(meta)
	if err != nil {
		return backend.Record{}, err
	}
	if data == nil {
		data = []byte{}
	}
	return backend.Record{Stream: stream, Sequence: seq, EventType: typ, Data: data, Timestamp: t, Metadata: m, CommitID: id}, nil
}

func corrupt(stream backend.StreamID, seq, pos int64, reason string, err error) error {
	where := "table es_events"
	switch {
	case pos > 0:
		where += ", position " + strconv.FormatInt(pos, 10)
	case seq > 0:
		where += ", sequence " + strconv.FormatInt(seq, 10)
	}
	return &backend.CorruptError{Stream: stream, Sequence: seq, Where: where, Reason: reason, Err: err}
}

var (
	_ backend.Backend     = (*Backend)(nil)
	_ backend.Feed        = (*Backend)(nil)
	_ backend.Checkpoints = (*Backend)(nil)
)
