// Package pgstore stores events and snapshots in PostgreSQL (13 or later;
// tested on 15) through pgx v5. Backend implements eventsourcing.Backend
// (and, through eventsourcing.NewStore, eventsourcing.EventStore), with the
// optional capabilities backend.Feed (every commit of every stream in one
// order that never skips a commit) and backend.Checkpoints (named feed
// positions, for the relay and for projections); SnapshotStore implements
// eventsourcing.SnapshotStore.
//
// # Construction
//
//	b, err := pgstore.Open(ctx, "postgres://app@db/app")        // owns its pool: Close closes it
//	b, err := pgstore.NewBackend(ctx, pool)                      // a *pgxpool.Pool the caller owns
//	snaps, err := pgstore.NewSnapshotStore(ctx, b.Pool())
//	store := eventsourcing.NewStore(b)
//
// Every constructor first runs EnsureSchema: it creates the schema's tables
// when they are missing (idempotent, safe at every start and from many
// processes at once: creation runs in one transaction under an advisory
// lock derived from the schema name) and refuses a schema recording another
// version (ErrSchemaVersion). With WithoutSchemaCreation it only verifies,
// and fails with ErrSchemaMissing, for roles that may not run DDL. When the
// schema exists that costs one query. WithSchema names the schema (default
// "eventsourcing"); stores in different schemas of one database are
// independent.
//
// # Schema (version 1)
//
// In schema S (quoted as an identifier, exactly as given):
//
//	CREATE TABLE S.schema_version (
//		one     boolean PRIMARY KEY DEFAULT true CHECK (one),  -- one row
//		version integer NOT NULL,                             -- SchemaVersion
//		created timestamptz NOT NULL DEFAULT now()
//	);
//	CREATE TABLE S.events (
//		position   bigint GENERATED ALWAYS AS IDENTITY,        -- feed order within a transaction
//		tx         xid8 NOT NULL DEFAULT pg_current_xact_id(), -- the writing transaction
//		aggregate  text NOT NULL,
//		key        text NOT NULL,
//		seq        bigint NOT NULL,                            -- from 1, contiguous per stream
//		commit_id  text NOT NULL,
//		event_type text NOT NULL,
//		data       bytea NOT NULL,                             -- the codec's bytes, exactly
//		time       timestamptz NOT NULL,                       -- to the microsecond
//		time_ns    smallint NOT NULL DEFAULT 0,                -- the nanoseconds timestamptz drops, 0-999
//		metadata   bytea,                                      -- a JSON object of strings, UTF-8; NULL if none
//		CONSTRAINT events_pkey PRIMARY KEY (aggregate, key, seq)
//	);
//	CREATE UNIQUE INDEX events_feed ON S.events (tx, position);
//	CREATE TABLE S.snapshots (
//		aggregate text, key text, seq bigint, version bigint, state bytea,
//		time timestamptz, time_ns smallint,                   -- all NOT NULL
//		PRIMARY KEY (aggregate, key)
//	);
//	CREATE TABLE S.checkpoints (name text PRIMARY KEY, position text NOT NULL, updated timestamptz NOT NULL DEFAULT now());
//
// One row per event, so that the primary key is the concurrency guard and
// a load can start inside a commit. Timestamps keep nanoseconds over years
// 1 to 9999: timestamptz holds microseconds, time_ns the rest. Metadata is
// JSON in bytea rather than jsonb because jsonb refuses the NUL character,
// which a header value may hold (read it with convert_from(metadata,
// 'UTF8')::jsonb when it does not).
//
// # Appends
//
// A commit is one INSERT statement in its own implicit transaction: atomic
// (all its events or none) in one round trip, where an explicit
// BEGIN/INSERT/COMMIT would cost three. A commit to a new stream (expected
// 0) is a plain INSERT; one after an existing event inserts only WHERE
// EXISTS the event at the expected sequence. So of any number of writers
// racing from the same head, in any number of processes, exactly one
// succeeds: the others violate the primary key (SQLSTATE 23505 on
// events_pkey) or find no event at their expected sequence, and get a
// *backend.ConflictError having stored nothing. Neither check is a read
// followed by a write: the unique index decides between racing inserts,
// and an event that exists keeps existing.
//
// An error the server returned for the statement means it rolled back:
// nothing was stored. An error pgx reports before sending anything
// (pgconn.SafeToRetry, or no connection to be had) stored nothing either.
// Anything else (the connection dropped, the server died, ctx ended while
// waiting for the answer) returns an error matching
// eventsourcing.ErrUnknownOutcome, and the commit may be stored; repeating
// the command with the same command ID is safe. Acknowledged commits are as
// durable as the server's synchronous_commit makes them (on, by default).
//
// A commit larger than DefaultMaxCommitSize (16 MiB, as MongoDB's; see
// WithMaxCommitSize, at most MaxCommitSizeLimit) is refused with a
// *backend.CommitTooLargeError before anything is sent.
//
// # Loads
//
// Load reads the stream by its primary key in pages (WithPageSize, default
// DefaultPageSize rows), each page read whole and its connection returned to
// the pool before its records are yielded: memory stays bounded, and the
// caller's loop may use the pool without deadlocking it. A row that is not
// what Append writes (a time_ns outside 0-999, metadata that is not a JSON
// object of strings, an unusable event type or commit ID, a time outside
// years 1-9999) yields a *backend.CorruptError naming the stream, the
// sequence and the row, after the records before it; nothing is modified.
//
// # Feed
//
// A plain identity column read by a tailing consumer ("position > last
// ORDER BY position") skips events: positions are taken when rows are
// inserted but become visible when their transactions commit, not always in
// that order, and a reader that has passed position 10 never comes back
// for a position 9 that commits late. (TestTailingReaders reproduces it:
// with 16 writers, some of whose transactions take up to 2ms to commit, the
// naive reader misses several percent of the commits; the feed misses
// none.)
//
// The feed orders commits by the writing transaction's ID (tx, xid8, which
// never wraps around), then by position, and reads only transactions older
// than the oldest one still running: tx < pg_snapshot_xmin of the reading
// statement's snapshot. Every transaction below that bound has ended, so no
// row can appear below it later: a reader that has passed a position never
// misses a commit. Each stream's commits are in the feed in stream order (a
// commit's transaction takes its ID only after the event before it was
// visible). A Position is the transaction ID and the position of the
// commit's last event, as 20 decimal digits each, joined by '/': it sorts as
// a string like the feed.
//
// The price is that a commit is yielded only once every older transaction
// in the cluster, in any database, has ended. A commit acknowledged while
// an older append is a moment from committing is held back for that moment:
// ReadFeed waits for such transactions, polling, for up to WithInFlightWait
// (default 1s), so that a commit acknowledged before a ReadFeed started is
// yielded by it. A long transaction anywhere in the cluster (an idle session
// inside a transaction that wrote something, a long batch job) holds the
// whole feed back for as long as it runs, and then every ReadFeed waits that
// second and yields only what is below it. Nothing is lost; it arrives when
// the transaction ends. Read-only transactions (pg_dump, reports) have no
// transaction ID and hold nothing back.
//
// WaitFeed returns when commits may be readable: it checks with one query,
// then waits for a wake-up or the poll interval (WithPollInterval, default
// 1s). A Backend wakes its own waiters directly after each append, and
// other processes' with a NOTIFY on the channel "pgstore." + schema, which
// a goroutine sends after commits, at most once per 5ms (PostgreSQL
// serialises the commits of notifying transactions, so one NOTIFY per
// append would serialise the appends). Each Backend that waits LISTENs on
// one connection of its own, outside the pool. Notifications are only a
// wake-up, never the data: one that is lost (a crash between commit and
// NOTIFY, a dropped listener) costs a reader at most a poll interval.
// WithoutNotify turns them off.
//
// Checkpoints are rows of the checkpoints table (an upsert per save), so a
// relay (package relay, FromBackend) or a projection keeps its position in
// the same database as the events.
//
// # Snapshots
//
// SnapshotStore keeps one row per stream. Put is one conditional upsert,
// INSERT ... ON CONFLICT (aggregate, key) DO UPDATE ... WHERE excluded.seq
// >= snapshots.seq, which PostgreSQL applies atomically against racing
// writers: an older snapshot never replaces a newer one.
//
// # Round trips
//
// Once pgx has prepared a statement on a connection (one more round trip,
// once per statement and connection):
//
//	Append                                       1
//	Load                                         1 per page (a stream of n events: n/pageSize+1, rounded down)
//	Handle on an aggregate (load, then append)   2, + 1 per further page of a long history
//	ReadFeed                                     1 (the bound) + 1 per page; 1 when nothing is new;
//	                                             + polls while older transactions hold commits back
//	WaitFeed                                     1, then a wait (no round trip)
//	LoadCheckpoint, SaveCheckpoint               1 each
//	SnapshotStore Get, Put, Delete               1 each
//	NewBackend, NewSnapshotStore, EnsureSchema   1 when the schema exists
//	NOTIFY after appends                         1 per 5ms at most, on its own, off the append path
//
// TestRoundTrips checks these counts.
//
// # Measured
//
// On this project's shared 2-core VM against PostgreSQL 15 (fsync off),
// go test -run '^$' -bench . -benchtime 2s -count 3, the three runs' range,
// store against raw pgx doing the same work in the same run (alternating):
// an Append of one event takes 0.97-1.02x the time of a raw INSERT of the
// same row to a new stream and 1.07-1.11x after an existing event (the
// head check); a 10-event commit 0.93-0.94x a raw multi-row INSERT; a load
// of 1,000 events 0.61-0.63x a raw query scanned and decoded the same way
// (events of a commit share their decoded metadata); this process's CPU
// time per append 0.97-1.11x raw, the server's 0.83-1.57x (counted in 10ms
// ticks: rough). Sixteen writers on sixteen streams commit 7,600-8,300
// commits/s (10,200-11,300 WithoutNotify), 0.68-0.96x the raw insert's rate
// in the same run. ReadFeed
// reads 57,000-84,000 events/s, 0.86-1.12x a raw ordered scan of the same
// rows. A reader in another process lags 16 writers writing 1,600 commits/s
// by 1.8-1.9ms at the median and 11-44ms at the 99th percentile (25ms and
// 54ms when polling every 50ms without NOTIFY). Figures on a machine other
// helpers' builds were loading at the same time; ratios are the meaningful
// part.
//
// # Concurrency
//
// Backend and SnapshotStore are safe for concurrent use by multiple
// goroutines, and any number of them, in any number of processes, may
// share a schema.
//
// # What the tests could not check
//
// The tests run against one local PostgreSQL 15 server with fsync and
// synchronous_commit off: they kill the server's processes (the fault test
// sets synchronous_commit on for its sessions), not the machine, so
// durability through a power loss is PostgreSQL's, not tested here.
// Not tested: other PostgreSQL versions; reading the feed from a hot
// standby (pg_current_snapshot there reflects the replayed primary); a pool
// behind PgBouncer in transaction mode (pgx's prepared statements need
// QueryExecModeExec or simple protocol there, and LISTEN does not work
// through it: WaitFeed then relies on polling); a database restored with
// pg_dump into another cluster, where transaction IDs start lower than
// the stored ones, so that new commits would sort before old positions
// (pg_upgrade keeps the transaction counter; after a logical restore,
// reset the feed's readers from ""); XID epochs beyond the first.
package pgstore
