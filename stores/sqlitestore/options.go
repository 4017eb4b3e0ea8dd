package sqlitestore

import (
	"fmt"
	"time"
)

// Defaults of the options.
const (
	// DefaultBusyTimeout is how long a write waits for another connection
	// or process holding the database's write lock (see WithBusyTimeout).
	DefaultBusyTimeout = 5 * time.Second

	// DefaultBatchSize is the number of event rows one query of Load or
	// ReadFeed reads (see WithBatchSize).
	DefaultBatchSize = 500

	// DefaultMaxCommitSize is the default limit on the encoded size of one
	// commit (see WithMaxCommitSize).
	DefaultMaxCommitSize = 64 << 20

	// MaxCommitSize is the highest limit WithMaxCommitSize accepts: every
	// event is one row, and SQLite refuses a row or value over
	// 1,000,000,000 bytes (SQLITE_MAX_LENGTH); this leaves room for a
	// row's other columns.
	MaxCommitSize = 999_000_000

	// DefaultPollInterval is how often WaitFeed looks for commits written
	// by other processes (see WithPollInterval).
	DefaultPollInterval = 500 * time.Millisecond

	// DefaultRecordCacheSize is the default size of a Backend's cache of
	// loaded records, in bytes (see WithRecordCache).
	DefaultRecordCacheSize = 16 << 20

	// DefaultMaxConns is the size of the connection pool of a database
	// opened with Open (see WithMaxConns).
	DefaultMaxConns = 4
)

// Synchronous is SQLite's synchronous setting for a database opened with
// Open: how hard a commit waits for the disk. See the package
// documentation for what each level keeps after a crash, and what it costs.
type Synchronous int

const (
	// SynchronousFull (the default) syncs the write-ahead log to disk on
	// every commit: an acknowledged commit survives a crash of the process,
	// of the operating system and a power cut.
	SynchronousFull Synchronous = iota
	// SynchronousNormal syncs only at checkpoints: an acknowledged commit
	// survives a crash of the process, but the last commits before a crash
	// of the operating system or a power cut may be lost (never half of
	// one: the database stays consistent).
	SynchronousNormal
)

func (s Synchronous) pragma() string {
	if s == SynchronousNormal {
		return "NORMAL"
	}
	return "FULL"
}

// String returns "FULL" or "NORMAL".
func (s Synchronous) String() string { return s.pragma() }

// Option configures a Backend.
type Option func(*config)

type config struct {
	busyTimeout   time.Duration
	batchSize     int
	maxCommitSize int
	pollInterval  time.Duration
	cacheSize     int
	// Options of Open only; set records which were given, so that
	// NewBackend can refuse them instead of ignoring them.
	synchronous Synchronous
	maxConns    int
	openOnly    []string
}

func newConfig(opts []Option) config {
	c := config{
		busyTimeout:   DefaultBusyTimeout,
		batchSize:     DefaultBatchSize,
		maxCommitSize: DefaultMaxCommitSize,
		pollInterval:  DefaultPollInterval,
		cacheSize:     DefaultRecordCacheSize,
		maxConns:      DefaultMaxConns,
	}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return c
}

// checkForDB reports the options that only Open can apply.
func (c config) checkForDB() error {
	if len(c.openOnly) > 0 {
		return fmt.Errorf("sqlitestore: %s configures the connections Open creates; for a *sql.DB of your own, set it in its data source name", c.openOnly[0])
	}
	return nil
}

// WithBusyTimeout sets how long a write waits while another connection or
// process holds the database's write lock, and, for a database opened with
// Open, how long any statement waits for a lock (SQLite's busy_timeout).
// After that the operation fails with an error matching ErrLocked, having
// stored nothing. Writers of one Backend never wait for each other this
// way: the Backend runs its writes one at a time. d <= 0 selects
// DefaultBusyTimeout.
func WithBusyTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			d = DefaultBusyTimeout
		}
		c.busyTimeout = d
	}
}

// WithBatchSize sets how many event rows one query of Load or ReadFeed
// reads. Both read a batch, release the connection, then yield its
// records, so at most one batch is held in memory at a time and no
// connection or read transaction stays open while the caller works. n <= 0
// selects DefaultBatchSize.
func WithBatchSize(n int) Option {
	return func(c *config) {
		if n <= 0 {
			n = DefaultBatchSize
		}
		c.batchSize = n
	}
}

// WithMaxCommitSize sets the limit on the encoded size of one commit in
// bytes (its events' data, types, metadata and commit ID); a larger commit
// is refused with a *backend.CommitTooLargeError before anything is
// written. n <= 0 selects DefaultMaxCommitSize; n is capped at
// MaxCommitSize.
func WithMaxCommitSize(n int) Option {
	return func(c *config) {
		if n <= 0 {
			n = DefaultMaxCommitSize
		}
		c.maxCommitSize = min(n, MaxCommitSize)
	}
}

// WithPollInterval sets how often WaitFeed checks for commits that another
// process (or another Backend on the same file) wrote: commits through the
// same Backend wake it at once. d <= 0 selects DefaultPollInterval.
func WithPollInterval(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			d = DefaultPollInterval
		}
		c.pollInterval = d
	}
}

// WithRecordCache sets the size, in bytes, of the Backend's cache of loaded
// records (default DefaultRecordCacheSize; n <= 0 turns it off). Stored
// events never change, so the records of a stream read from its start
// stay valid: a later Load of the stream yields them from memory and asks
// the database only for the rows after them, which SQLite then finds in
// one index lookup. It serves aggregates loaded from scratch, as an
// application does when it makes a fresh instance per request. Streams
// are kept whole, from their first event, most recently loaded first; one
// larger than a quarter of the cache is not kept. The size counts each
// record's data, type, commit ID and metadata plus a fixed overhead.
// Deleting or changing stored events by hand while a Backend runs is not
// supported (it is not with the cache off either: Append relies on
// sequences only growing).
func WithRecordCache(n int) Option {
	return func(c *config) { c.cacheSize = max(n, 0) }
}

// WithSynchronous sets SQLite's synchronous level on the connections that
// Open creates (default SynchronousFull). NewBackend refuses it: the
// connections of a *sql.DB you own are configured by its data source name
// (for modernc.org/sqlite, "_pragma=synchronous(FULL)").
func WithSynchronous(s Synchronous) Option {
	return func(c *config) {
		c.synchronous = s
		c.openOnly = append(c.openOnly, "WithSynchronous")
	}
}

// WithMaxConns sets the size of the connection pool that Open creates
// (default DefaultMaxConns): one writer at a time, and readers beside it.
// Each connection keeps its own page cache. NewBackend refuses it: size the
// pool of a *sql.DB you own with its SetMaxOpenConns.
func WithMaxConns(n int) Option {
	return func(c *config) {
		if n <= 0 {
			n = DefaultMaxConns
		}
		c.maxConns = n
		c.openOnly = append(c.openOnly, "WithMaxConns")
	}
}
