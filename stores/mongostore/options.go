package mongostore

// MaxDocumentSize is MongoDB's limit on the size of one BSON document
// (maxBsonObjectSize, 16 MiB).
const MaxDocumentSize = 16 << 20

// DefaultMaxCommitSize is the default limit on the encoded size of one commit
// document: MaxDocumentSize less 16 KiB of headroom, so that a commit that
// passes the check is never refused by a server (or by its oplog, which wraps
// each inserted document in a few hundred bytes of its own).
const DefaultMaxCommitSize = MaxDocumentSize - 16<<10

// DefaultBoundaryCacheSize is the number of streams whose latest known commit
// boundary a Backend remembers unless WithBoundaryCache says otherwise.
const DefaultBoundaryCacheSize = 10000

// Option configures a Backend.
type Option func(*config)

type config struct {
	batchSize     int32
	maxCommitSize int
	createIndexes bool
	cacheSize     int
	noMarker      bool
}

func newConfig(opts []Option) config {
	c := config{maxCommitSize: DefaultMaxCommitSize, createIndexes: true, cacheSize: DefaultBoundaryCacheSize}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return c
}

// WithBatchSize sets how many commit documents the server returns per round
// trip when a Backend loads a stream (the cursor's batch size). Loads stream
// through the cursor, so at most one batch is held in memory at a time
// (and never more than the server's 16 MiB reply limit). n <= 0 leaves the
// choice to the server: 101 documents in the first batch, then as many as fit
// in 16 MiB.
func WithBatchSize(n int32) Option {
	return func(c *config) { c.batchSize = max(n, 0) }
}

// WithMaxCommitSize lowers the limit on the encoded size (in bytes) of one
// commit document; commits above it are refused with an
// *backend.CommitTooLargeError before anything is written. n <= 0, or a
// value above DefaultMaxCommitSize, selects DefaultMaxCommitSize.
func WithMaxCommitSize(n int) Option {
	return func(c *config) {
		if n <= 0 || n > DefaultMaxCommitSize {
			n = DefaultMaxCommitSize
		}
		c.maxCommitSize = n
	}
}

// WithoutIndexCreation makes construction verify that the required index
// exists instead of creating it, for deployments where the application's
// user lacks the createIndex privilege and an operator creates the index
// (see the package documentation). Construction then fails with an error
// matching ErrIndexMissing if it is absent.
func WithoutIndexCreation() Option {
	return func(c *config) { c.createIndexes = false }
}

// WithBoundaryCache sets how many streams' latest known commit boundary the
// Backend remembers (default DefaultBoundaryCacheSize). A boundary is the
// last sequence of a commit document the Backend has inserted or loaded;
// because commit documents are never removed, it stays true. An Append at a
// known boundary needs only its insert; any other Append at expected > 0
// first checks, with one find by _id, that a commit ends at expected. When
// the cache is full, an arbitrary stream is forgotten (its next Append costs
// the find again). n <= 0 disables the cache: every Append at expected > 0
// then costs one more find.
//
// Deleting a stream's commit documents out of band (by hand, with a TTL
// index, by restoring an older backup) while a Backend runs can make a
// boundary it remembers stale, so that an Append at that sequence is
// accepted instead of failing with backend.ErrConcurrency. If anything
// does that, turn the cache off with WithBoundaryCache(0), at one extra find
// per append.
func WithBoundaryCache(n int) Option {
	return func(c *config) { c.cacheSize = max(n, 0) }
}

// WithoutOutbox turns the outbox's pending marker off, for applications
// that do not relay their commits from the store: Append writes commit
// documents without it, so they are never pending (Pending yields none of
// them), and construction neither creates nor requires the pending index
// (with WithoutIndexCreation only stream_first is checked), so a collection
// made by an earlier version serves as it is. Pending and MarkPublished
// still serve the commits that other Backends marked on the collection (a
// find that is a collection scan if the pending index does not exist).
//
// What the marker costs a commit: its document is 17 bytes larger (a BSON
// int64 named "pending"), and the insert writes one more index entry,
// into the pending index; MarkPublished later costs it one document update.
// Without the marker, on a collection that has no pending index, an insert
// maintains two indexes (_id and stream_first) instead of three; on one
// that has it (made by another Backend), the commit still gets a null entry
// there, as every document does. The package documentation gives the
// measured difference.
func WithoutOutbox() Option {
	return func(c *config) { c.noMarker = true }
}
