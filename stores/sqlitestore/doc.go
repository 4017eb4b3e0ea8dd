// Package sqlitestore keeps events, snapshots and feed checkpoints in one
// SQLite database file, through modernc.org/sqlite: pure Go, no cgo, so a
// program using it builds and runs on a machine without a C compiler.
// Backend implements eventsourcing.Backend (and, through
// eventsourcing.NewStore, eventsourcing.EventStore) with the optional
// capabilities backend.Feed and backend.Checkpoints; SnapshotStore
// implements eventsourcing.SnapshotStore in the same file.
//
// # Construction
//
//	b, err := sqlitestore.Open(ctx, "data/app.db")   // owns its *sql.DB: Close closes it
//	b, err := sqlitestore.NewBackend(ctx, db)        // a *sql.DB of driver "sqlite" the caller owns
//	snapshots := sqlitestore.NewSnapshotStore(b)     // same database, no I/O
//	store := eventsourcing.NewStore(b)
//
// Importing this package registers modernc.org/sqlite's database/sql
// driver, named "sqlite". Open takes a file path (not a URI: '?', '#' and
// '%' are part of the name), creates the file if it is missing but not its
// directory, and configures every connection of its pool
// (WithMaxConns, default 4) with a busy timeout (WithBusyTimeout, default
// 5s) and a synchronous level (WithSynchronous, default FULL). NewBackend
// uses the caller's handle as its data source name configures it; set
// "_pragma=busy_timeout(5000)" there if other processes share the file.
//
// Construction, with either, reads the schema version first and refuses a
// database of a newer one (ErrSchemaVersion) before changing anything; then
// switches the database to write-ahead logging (PRAGMA journal_mode=WAL,
// which stays set in the file; an in-memory database cannot, and is
// refused) and creates the tables if they are missing, in one write
// transaction, so that any number of processes may start at once. Opening
// a database whose tables exist writes nothing and needs no write lock.
//
// # Schema (version 1)
//
//	CREATE TABLE es_schema (name TEXT PRIMARY KEY, version INTEGER NOT NULL) STRICT, WITHOUT ROWID;
//	    -- the row 'eventsourcing' holds SchemaVersion
//	CREATE TABLE es_events (
//	    position       INTEGER PRIMARY KEY,  -- the rowid: feed order
//	    aggregate_type TEXT    NOT NULL,
//	    aggregate_key  TEXT    NOT NULL,
//	    sequence       INTEGER NOT NULL,     -- from 1, contiguous per stream
//	    commit_first   INTEGER NOT NULL,     -- the first and last sequence of the event's commit
//	    commit_last    INTEGER NOT NULL,
//	    commit_id      TEXT    NOT NULL,
//	    event_type     TEXT    NOT NULL,
//	    data           BLOB    NOT NULL,     -- the codec's bytes, exactly
//	    time           TEXT    NOT NULL,     -- UTC, "2006-01-02T15:04:05.000000000Z"
//	    metadata       TEXT,                 -- a JSON object of strings; NULL if none
//	    UNIQUE (aggregate_type, aggregate_key, sequence)
//	) STRICT;
//	CREATE TABLE es_snapshots (
//	    aggregate_type TEXT, aggregate_key TEXT, sequence INTEGER, version INTEGER,
//	    state BLOB, time TEXT,               -- all NOT NULL
//	    PRIMARY KEY (aggregate_type, aggregate_key)
//	) STRICT;
//	CREATE TABLE es_checkpoints (name TEXT PRIMARY KEY, position TEXT NOT NULL) STRICT, WITHOUT ROWID;
//
// One row per event, so that the unique index is the concurrency guard and
// a load can start inside a commit. STRICT tables refuse a value of the
// wrong type from any writer, so what the store reads back has the types it
// wrote. Times are fixed-width text: exact to the nanosecond over years 1 to
// 9999 (Unix nanoseconds in one integer stop in 2262), sorted as instants,
// and readable by SQLite's date functions. The tables may share a file with
// an application's own (DB returns the handle); this package does not use
// PRAGMA user_version, which applications often do.
//
// # One writer at a time
//
// SQLite runs one write transaction per database at a time. A Backend
// runs its writes (appends, snapshot writes, checkpoint saves) one at a
// time, so its goroutines never meet SQLite's "database is locked": racing
// appends get success or a *backend.ConflictError. Readers (Load, ReadFeed,
// snapshot Get) run beside the writer on other connections: write-ahead
// logging lets them read the last committed state while a write is in
// progress. Writers of other processes, or of other Backends on the same
// file, take their turns through SQLite's lock: a write waits for it up to
// the busy timeout (SQLite's own wait on connections Open made, and the
// Backend retrying its transaction otherwise), then fails with ErrLocked
// having stored nothing. A context that ends first ends the wait.
//
// # Appends
//
// A commit is one transaction: BEGIN, one INSERT per event (the first takes
// the write lock, with a fresh view of the database), and COMMIT. The
// unique index refuses an event whose (stream, sequence) another commit
// holds, so a commit after a head that has moved on stores nothing and
// gets a *backend.ConflictError. An expected sequence ahead of the head
// collides with nothing, so an append at expected > 0 also looks up the
// event at the expected sequence, inside the transaction, unless the
// Backend has already seen the stream reach it. Every Backend remembers,
// for up to 10,000 streams, the last sequence it committed or loaded: a
// commit expecting less is refused at once, without a transaction or a
// wait for the writer's turn, and a commit expecting exactly that needs no
// lookup. Both rely on stored events never being changed or removed, which
// this package never does; do not do it by hand while Backends run.
//
// An error before COMMIT rolls the transaction back: nothing was stored.
// A COMMIT that fails with SQLITE_FULL, SQLITE_BUSY or a constraint stored
// nothing either. A COMMIT that fails otherwise (an I/O error writing or
// syncing the log) returns an error matching
// eventsourcing.ErrUnknownOutcome: after a crash, SQLite's recovery may find
// the commit whole in the log. The context is checked before COMMIT, not
// during it, so a commit is never reported failed after it was made
// durable. A commit larger than WithMaxCommitSize (default 64 MiB) is
// refused with a *backend.CommitTooLargeError before anything is written.
//
// # Loads
//
// Load reads the stream through the unique index, in batches
// (WithBatchSize, default 500 rows), each read whole and its connection
// released before its records are yielded: memory stays bounded, no read
// transaction stays open while the caller works (which would keep SQLite
// from checkpointing the log), and the caller's loop may use the store. A
// row that is not what Append writes (a time or metadata it cannot read)
// yields a *backend.CorruptError naming the stream, the sequence and the
// table, after the records before it; nothing is modified.
//
// Each Backend caches the records it loaded, whole streams from their first
// event, up to WithRecordCache bytes (default 16 MiB, least recently used
// first): a later load of the stream yields them from memory and queries
// only the rows after them. An aggregate made afresh for each request then
// costs one indexed query that finds nothing new, not a decode of its
// history. Records are shared with callers, who treat them as read-only.
//
// # Feed
//
// The position is the rowid, which SQLite assigns as the largest so far
// plus one; with one write transaction at a time, a commit's events get
// consecutive positions and every later commit gets higher ones, and a
// commit becomes visible whole, after every earlier one. So a reader that
// has passed a position can never miss a commit that becomes visible later:
// the feed needs no holding back. ReadFeed reads in batches like Load and
// assembles each commit from its rows (a commit longer than a batch is
// completed from the next). A commit's Position is the position of its last
// event as 20 decimal digits; a position that is not, or that falls inside
// a commit, yields an error matching backend.ErrInvalidPosition.
//
// WaitFeed checks the last position with one query, then waits: an append
// through the same Backend wakes it at once, and it returns after the poll
// interval (WithPollInterval, default 500ms) so that commits of other
// processes are seen too. Checkpoints are rows of es_checkpoints, saved
// with an upsert in a write transaction.
//
// # Snapshots
//
// SnapshotStore keeps one row per stream. Put is one upsert whose update
// applies only if the new snapshot's sequence is not lower than the stored
// one, so an older snapshot never replaces a newer one, even between
// writers in several processes. A row whose time cannot be read is
// reported as backend.ErrInvalidSnapshot.
//
// # Durability and what it costs
//
// With write-ahead logging, a commit appends its pages to the log file
// (app.db-wal, beside app.db with app.db-shm); SQLite copies them into the
// database file at checkpoints, automatically once the log holds 1000
// pages. The synchronous level decides when the log reaches the disk:
//
//   - FULL (the default): the log is synced at every commit. An
//     acknowledged commit survives a crash of the process, of the operating
//     system, and a power cut.
//   - NORMAL (WithSynchronous(SynchronousNormal)): the log is synced only at
//     checkpoints. An acknowledged commit survives a crash of the process
//     (the test kills a writer with SIGKILL), but the last commits before a
//     crash of the operating system or a power cut may be lost; the
//     database stays consistent, never holding part of a commit.
//
// Measured with the benchmarks of this package on the project's shared
// 2-core VM (go test -run '^$' -bench . -benchtime 2s -count 3
// ./stores/sqlitestore/), with CPU time (user and system) per operation
// beside wall time, which swings with the disk and the machine's load;
// ratios are Append over hand-written database/sql inserts of the same
// rows in one transaction, alternated in one loop:
//
//	                               wall           CPU          ratio wall   ratio CPU
//	commit of 1 event, FULL        0.23-0.28 ms   150-170 µs   1.01-1.02    1.01-1.03
//	commit of 1 event, NORMAL      0.05-0.07 ms   48-52 µs     0.96-0.98    1.05-1.08
//	commit of 10 events, FULL      0.39-0.56 ms   240-270 µs   0.98-1.01    1.01-1.04
//	commit of 10 events, NORMAL    0.15-0.18 ms   150-160 µs   1.01         1.02-1.03
//
// A load of 1,000 events took about 2 ms (wall and CPU) with the cache
// off, 0.61-0.62 times a hand-written query decoding times with
// time.Parse and metadata with encoding/json, and about 0.1 ms from the
// cache. Commands through eventsourcing.NewStore from 8 goroutines on 8
// aggregates ran at 3,000-3,400 per second at FULL and 10,000-10,600 at
// NORMAL (65-70 µs of CPU each); from 1 goroutine, 2,900-4,000 and
// 9,100-11,400: writes are serialised, so on this machine more writers do
// not add throughput.
//
// Copying the database file while it is in use can copy a torn state; back
// it up with SQLite's online backup or VACUUM INTO, or copy it with the
// -wal file while no process has it open.
//
// # Round trips
//
// All are statements on a local file; the write transaction's BEGIN and
// COMMIT are statements too.
//
//	Backend.Append, new stream                 BEGIN, 1 INSERT per event, COMMIT
//	Backend.Append at a head the Backend saw   BEGIN, 1 INSERT per event, COMMIT
//	Backend.Append, other expected > 0         as above + 1 SELECT (by the unique index)
//	Backend.Append behind a head it saw        none (a *backend.ConflictError at once)
//	Backend.Load                               1 SELECT per 500 events; 1 SELECT if cached
//	Handle on an aggregate                     1 SELECT (load) + an append at the head it saw
//	ReadFeed                                   1 SELECT per 500 events
//	WaitFeed                                   1 SELECT, then a wait
//	SaveCheckpoint, SnapshotStore.Put/Delete   BEGIN, 1 statement, COMMIT
//	LoadCheckpoint, SnapshotStore.Get          1 SELECT
//	Open / NewBackend, tables existing         about 8, and preparing the Backend's 11 statements
//
// # Errors
//
// Outcomes of the store contract match the sentinels of package backend
// (re-exported by eventsourcing): ErrConcurrency, ErrUnknownOutcome,
// ErrClosed, ErrCommitTooLarge, ErrCorruptStream, ErrInvalidPosition,
// ErrSnapshotNotFound, ErrInvalidSnapshot. Problems with the file match
// this package's: ErrCannotOpen (a missing directory, no permission),
// ErrReadOnly (a read-only file, or a directory where the log cannot be
// created), ErrNotDatabase, ErrSchemaVersion, ErrLocked and ErrFull (the
// disk, or PRAGMA max_page_count). Every error names the operation and the
// stream or the file, and wraps SQLite's own error; context errors still
// match context.Canceled and context.DeadlineExceeded.
//
// # What the tests could not check
//
// The tests run on a local Linux file system: a writer killed with SIGKILL
// mid-commit, another process holding the file locked, a read-only
// directory, a file that is not a database, a newer schema, and a full
// database (simulated with PRAGMA max_page_count, not a full disk). They
// cannot cut the power or crash the kernel, so FULL's guarantee against
// both rests on SQLite's; and no test makes COMMIT fail with an I/O error
// (the ErrUnknownOutcome path). SQLite's locking is unreliable on network
// file systems (NFS, SMB): keep the file on a local disk. Other operating
// systems were not tested.
package sqlitestore
