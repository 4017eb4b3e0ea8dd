package pgstore

import (
	"fmt"
	"time"
)

// DefaultSchema is the PostgreSQL schema the store's tables live in unless
// WithSchema names another.
const DefaultSchema = "eventsourcing"

// DefaultMaxCommitSize is the default limit on the size of one commit, in
// bytes, as the store measures it: the sum over its events of the event
// data, the encoded metadata, the event type name and the commit ID. It is
// MongoDB's document limit, so that a commit one store accepts the others
// accept too.
const DefaultMaxCommitSize = 16 << 20

// MaxCommitSizeLimit is the highest limit WithMaxCommitSize accepts: a
// quarter of PostgreSQL's 1 GiB limit on one protocol message (the statement
// that stores a commit carries all of it in one Bind message, encoded as
// arrays) and on one bytea value.
const MaxCommitSizeLimit = 256 << 20

// DefaultPageSize is the number of rows a Load or a ReadFeed reads per query
// unless WithPageSize says otherwise.
const DefaultPageSize = 4096

// DefaultPollInterval is the longest WaitFeed waits for a notification
// before it returns anyway, unless WithPollInterval says otherwise.
const DefaultPollInterval = time.Second

// DefaultInFlightWait is how long ReadFeed waits, unless WithInFlightWait
// says otherwise, for older transactions still in flight that hold back
// commits it can already see.
const DefaultInFlightWait = time.Second

// Option configures a Backend, a SnapshotStore or EnsureSchema.
type Option func(*config)

type config struct {
	schema        string
	create        bool
	maxCommitSize int
	pageSize      int
	pollInterval  time.Duration
	inFlightWait  time.Duration
	notify        bool
}

func newConfig(opts []Option) (config, error) {
	c := config{
		schema:        DefaultSchema,
		create:        true,
		maxCommitSize: DefaultMaxCommitSize,
		pageSize:      DefaultPageSize,
		pollInterval:  DefaultPollInterval,
		inFlightWait:  DefaultInFlightWait,
		notify:        true,
	}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if err := validSchemaName(c.schema); err != nil {
		return c, err
	}
	return c, nil
}

// validSchemaName accepts what PostgreSQL accepts as a quoted identifier:
// 1 to 63 bytes, no NUL.
func validSchemaName(s string) error {
	if s == "" || len(s) > 63 {
		return fmt.Errorf("pgstore: schema name %q: want 1 to 63 bytes", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return fmt.Errorf("pgstore: schema name %q contains a NUL byte", s)
		}
	}
	return nil
}

// WithSchema names the PostgreSQL schema that holds the store's tables
// (default DefaultSchema, "eventsourcing"). The name is used as a quoted
// identifier, exactly as given (case-sensitive, 1 to 63 bytes). Backends and
// SnapshotStores that share a schema share their data; separate schemas
// keep separate stores in one database.
func WithSchema(name string) Option {
	return func(c *config) { c.schema = name }
}

// WithoutSchemaCreation makes construction verify the schema instead of
// creating what is missing, for deployments whose application role may not
// run DDL and whose operator creates the schema beforehand (with
// EnsureSchema, or with the SQL in the package documentation). Construction
// then fails with an error matching ErrSchemaMissing when a table is
// missing, and with one matching ErrSchemaVersion when the schema is of
// another version.
func WithoutSchemaCreation() Option {
	return func(c *config) { c.create = false }
}

// WithMaxCommitSize sets the limit on the size of one commit, in bytes (see
// DefaultMaxCommitSize for how it is measured). A larger commit is refused
// with an *eventsourcing.CommitTooLargeError before anything is sent.
// n <= 0 selects DefaultMaxCommitSize; values above MaxCommitSizeLimit are
// lowered to it.
func WithMaxCommitSize(n int) Option {
	return func(c *config) {
		switch {
		case n <= 0:
			n = DefaultMaxCommitSize
		case n > MaxCommitSizeLimit:
			n = MaxCommitSizeLimit
		}
		c.maxCommitSize = n
	}
}

// WithPageSize sets how many rows one query of Load or ReadFeed reads
// (default DefaultPageSize). Each page is read whole and its connection
// returned to the pool before its records are yielded, so at most one page
// is held in memory, and the caller's loop may use the store (or the pool)
// without holding a connection. A stream of n events loads in n/pageSize+1
// queries (rounded down). n <= 0 selects DefaultPageSize.
func WithPageSize(n int) Option {
	return func(c *config) {
		if n <= 0 {
			n = DefaultPageSize
		}
		c.pageSize = n
	}
}

// WithPollInterval sets the longest WaitFeed waits before it returns even
// without a notification (default DefaultPollInterval): the most a lost
// notification (a dropped listener connection, a transaction rolled back
// while a later one waited behind it) delays a tailing reader. d <= 0
// selects DefaultPollInterval.
func WithPollInterval(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			d = DefaultPollInterval
		}
		c.pollInterval = d
	}
}

// WithoutNotify makes Append skip its NOTIFY, for write-heavy deployments
// where no reader waits on the feed with WaitFeed, or where readers may
// poll: WaitFeed then wakes only at the poll interval (WithPollInterval).
// PostgreSQL serialises the commits of transactions that notify (on a
// lock taken at commit), so this lets appends commit in parallel; see the
// package documentation for its measured cost.
func WithoutNotify() Option {
	return func(c *config) { c.notify = false }
}

// WithInFlightWait sets how long ReadFeed waits for transactions that hold
// back commits it can already see (default DefaultInFlightWait). The feed
// yields a commit only once every older transaction in the cluster has
// ended; when ReadFeed starts and sees a committed row whose transaction is
// newer than one still running (most often a concurrent Append a moment
// from its commit), it polls, backing off from a quarter of a millisecond to 10
// milliseconds, until those older transactions have ended, so that a
// commit acknowledged before ReadFeed started is yielded by it. When they
// have not ended within d (a long transaction elsewhere in the cluster), it
// yields what is readable and leaves the rest to a later call. d <= 0: do
// not wait.
func WithInFlightWait(d time.Duration) Option {
	return func(c *config) { c.inFlightWait = max(d, 0) }
}
