package mongostore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"sync/atomic"
	"time"

	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/internal/boundary"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// disconnectTimeout bounds how long Close waits for operations in flight
// before disconnecting a client the Backend owns.
const disconnectTimeout = 10 * time.Second

// Backend is a backend.Backend storing each commit as one document of a
// MongoDB collection (see the package documentation for the schema), and a
// backend.Outbox (see Pending). Applications use it through
// eventsourcing.NewStore. It is safe for concurrent use by multiple
// goroutines, and any number of Backends, in any number of processes, may
// share a collection.
type Backend struct {
	client  *mongo.Client
	coll    *mongo.Collection
	owned   bool // Close disconnects client
	cfg     config
	closed  atomic.Bool
	findOpt *options.FindOptionsBuilder       // read-only after construction
	markOpt *options.UpdateManyOptionsBuilder // read-only after construction
	bounds  *boundary.Cache                   // latest commit boundary seen per stream
	clock   atomic.Int64                      // the latest pending marker written (see stamp)
}

// NewBackend returns a Backend storing commits in the collection coll of the
// database db, through client, which the caller owns: Close does not
// disconnect it. It ensures the required index exists (see EnsureIndexes and
// WithoutIndexCreation), so a Backend never runs without it; that costs one
// or two round trips.
func NewBackend(ctx context.Context, client *mongo.Client, db, coll string, opts ...Option) (*Backend, error) {
	return newBackend(ctx, client, false, db, coll, opts)
}

// Open connects to the deployment at uri (a MongoDB connection string) and
// returns a Backend that owns the connection: Close disconnects it. ctx bounds
// the connection and the index check; to bound how long an unreachable server
// is waited for by each later call, set serverSelectionTimeoutMS in uri or
// give each call a context deadline. For full control of the client options,
// connect yourself and use NewBackend.
func Open(ctx context.Context, uri, db, coll string, opts ...Option) (*Backend, error) {
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		return nil, fmt.Errorf("mongostore: connect: %w", err)
	}
	b, err := newBackend(ctx, client, true, db, coll, opts)
	if err != nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), disconnectTimeout)
		defer cancel()
		_ = client.Disconnect(dctx)
		return nil, err
	}
	return b, nil
}

func newBackend(ctx context.Context, client *mongo.Client, owned bool, db, coll string, opts []Option) (*Backend, error) {
	if client == nil {
		return nil, errors.New("mongostore: nil client")
	}
	if db == "" || coll == "" {
		return nil, fmt.Errorf("mongostore: empty database or collection name (%q, %q)", db, coll)
	}
	b := &Backend{
		client: client,
		coll:   client.Database(db).Collection(coll),
		owned:  owned,
		cfg:    newConfig(opts),
	}
	b.bounds = boundary.New(b.cfg.cacheSize)
	// The _id index serves both the range and the order; the hint keeps a
	// query planner from sorting the output of the stream_first index
	// instead.
	byID := bson.D{{Key: fID, Value: 1}}
	b.findOpt = options.Find().SetSort(byID).SetHint(byID)
	b.markOpt = options.UpdateMany().SetHint(byID)
	if b.cfg.batchSize > 0 {
		b.findOpt.SetBatchSize(b.cfg.batchSize)
	}
	if err := ensureIndexes(ctx, b.coll, b.indexes(), b.cfg.createIndexes); err != nil {
		return nil, err
	}
	return b, nil
}

// EnsureIndexes creates the index the Backend needs on its collection (the
// unique index on aggregate, key and first described in the package
// documentation) unless an index with the same keys and uniqueness already
// exists, under any name. It is idempotent and safe to call at every start
// and from several processes at once. NewBackend calls it; call it yourself to
// migrate ahead of a deployment. With WithoutIndexCreation it only verifies,
// returning an error matching ErrIndexMissing if the index is absent.
func (b *Backend) EnsureIndexes(ctx context.Context) error {
	if b.closed.Load() {
		return backend.ErrClosed
	}
	return b.wrap(ensureIndexes(ctx, b.coll, b.indexes(), b.cfg.createIndexes))
}

// Client returns the client the Backend uses. If the Backend was made by
// Open, it owns the client and Close disconnects it; the caller may share it
// (for a SnapshotStore, say) until then.
func (b *Backend) Client() *mongo.Client { return b.client }

// Append stores the commit as one commit document, with its ID and (unless
// WithoutOutbox) the outbox's pending marker, if the stream's last sequence
// is c.Expected. If it is not, Append returns a *backend.ConflictError and
// stores nothing; this holds between any number of racing writers. A commit
// that backend.CheckAppend refuses (invalid stream, commit ID, sequences,
// event type, timestamp or metadata) is refused before anything is sent.
// When the insert's answer is lost (network error, timeout, cancelled
// context) the error matches backend.ErrUnknownOutcome: the commit may be
// stored.
//
// A commit whose document would exceed the size limit (DefaultMaxCommitSize,
// or WithMaxCommitSize) is refused with a *backend.CommitTooLargeError
// before any round trip.
//
// Round trips: one insert when expected is 0 (a new stream) or a commit
// boundary this Backend has seen (it inserted or loaded the commit ending at
// expected: the usual load-then-commit path; see WithBoundaryCache);
// otherwise one find by _id (does a commit end at expected?) and one insert.
// The find rejects an expected sequence that is ahead of the stream's head
// or inside a commit; the unique index on the first sequence decides between
// writers racing from the same head. No transaction is used.
func (b *Backend) Append(ctx context.Context, c backend.Commit) error {
	if b.closed.Load() {
		return backend.ErrClosed
	}
	stream, expected, records := c.Stream, c.Expected, c.Records
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mongostore: append to %s: %w", stream, err)
	}
	if err := backend.CheckAppend(c); err != nil {
		return err
	}
	if len(records) == 0 {
		return nil
	}
	var marker int64
	if !b.cfg.noMarker {
		marker = b.stamp()
	}
	doc, err := encodeCommit(c, marker)
	if err != nil {
		return fmt.Errorf("mongostore: encode commit to %s: %w", stream, err)
	}
	if len(doc) > b.cfg.maxCommitSize {
		return &backend.CommitTooLargeError{Stream: stream, Events: len(records), Size: len(doc), Limit: b.cfg.maxCommitSize}
	}
	pk := stream.String()
	if expected > 0 && !b.bounds.Known(pk, expected) {
		// Commits are never removed (only their pending marker changes), so
		// once a commit ending at expected exists it keeps existing:
		// checking before the insert is not a race. (For the same reason, a
		// boundary this Backend has seen needs no check.)
		err := b.coll.FindOne(ctx, bson.D{{Key: fID, Value: docID(stream, expected)}},
			options.FindOne().SetProjection(bson.D{{Key: fID, Value: 1}})).Err()
		if errors.Is(err, mongo.ErrNoDocuments) {
			return &backend.ConflictError{Stream: stream, Expected: expected, Head: -1, Reason: "no commit ends at the expected sequence"}
		}
		if err != nil {
			return b.wrap(fmt.Errorf("mongostore: append to %s: check head: %w", stream, err))
		}
	}
	if _, err := b.coll.InsertOne(ctx, bson.Raw(doc)); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return &backend.ConflictError{Stream: stream, Expected: expected, Head: -1, Reason: "another commit holds the next sequence", Err: err}
		}
		if !refusedByServer(err) {
			err = fmt.Errorf("%w: %w", backend.ErrUnknownOutcome, err)
		}
		return b.wrap(fmt.Errorf("mongostore: append to %s: %w", stream, err))
	}
	b.bounds.Note(pk, records[len(records)-1].Sequence)
	return nil
}

// Load yields the records of stream after the given sequence, in order,
// reading commit documents through a cursor (see WithBatchSize), so a long
// history is never held in memory at once. It may start inside a commit.
// A commit document that cannot be read yields a *backend.CorruptError
// (backend.ErrCorruptStream) naming the stream and the document, and none
// of that commit's records.
//
// The last sequence of every commit document read is remembered as a commit
// boundary of the stream (see WithBoundaryCache), so that an Append after
// the load needs no head check.
//
// Round trips: one find, plus one getMore per further batch.
func (b *Backend) Load(ctx context.Context, stream backend.StreamID, after int64) iter.Seq2[backend.Record, error] {
	return func(yield func(backend.Record, error) bool) {
		if b.closed.Load() {
			yield(backend.Record{}, backend.ErrClosed)
			return
		}
		if err := stream.Validate(); err != nil {
			yield(backend.Record{}, err)
			return
		}
		if err := ctx.Err(); err != nil {
			yield(backend.Record{}, fmt.Errorf("mongostore: load %s: %w", stream, err))
			return
		}
		after = max(after, 0)
		cur, err := b.coll.Find(ctx, idRange(stream, "$gt", after, "$lte", math.MaxInt64), b.findOpt)
		if err != nil {
			yield(backend.Record{}, b.wrap(fmt.Errorf("mongostore: load %s: %w", stream, err)))
			return
		}
		defer closeCursor(ctx, cur)
		pk, highest := stream.String(), int64(0)
		defer func() { b.bounds.Note(pk, highest) }()
		var recs []backend.Record
		for cur.Next(ctx) {
			// Current is only valid until the next call to Next; the
			// records' Data point into the copy.
			doc := bson.Raw(bytes.Clone(cur.Current))
			recs, err = decodeCommit(stream, doc, after, recs[:0])
			if err != nil {
				yield(backend.Record{}, err)
				return
			}
			if last, err := intField(doc, fLast); err == nil { // decodeCommit checked it
				highest = max(highest, last)
			}
			for _, r := range recs {
				if !yield(r, nil) {
					return
				}
			}
			if err := ctx.Err(); err != nil {
				yield(backend.Record{}, fmt.Errorf("mongostore: load %s: %w", stream, err))
				return
			}
		}
		if err := cur.Err(); err != nil {
			yield(backend.Record{}, b.wrap(fmt.Errorf("mongostore: load %s: %w", stream, err)))
		}
	}
}

// closeCursor releases the server-side cursor, even if ctx is done.
func closeCursor(ctx context.Context, cur *mongo.Cursor) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), disconnectTimeout)
	defer cancel()
	_ = cur.Close(cctx)
}

// Close makes every later call return backend.ErrClosed and, if the
// Backend owns its client (Open), disconnects it, waiting up to 10 seconds
// for operations in flight. Closing twice is not an error.
func (b *Backend) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	b.bounds.Reset()
	if !b.owned {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), disconnectTimeout)
	defer cancel()
	if err := b.client.Disconnect(ctx); err != nil {
		return fmt.Errorf("mongostore: disconnect: %w", err)
	}
	return nil
}

// refusedByServer reports whether err is the server's answer refusing a
// write, so that nothing was stored. Anything else (a network error, a
// timeout, a cancelled context) leaves the outcome unknown.
func refusedByServer(err error) bool {
	if mongo.IsNetworkError(err) || mongo.IsTimeout(err) {
		return false
	}
	var we mongo.WriteException
	if errors.As(err, &we) {
		return len(we.WriteErrors) > 0 || we.WriteConcernError == nil
	}
	var ce mongo.CommandError
	return errors.As(err, &ce)
}

// wrap marks an operation that failed because the Backend was closed while
// it ran as matching backend.ErrClosed too.
func (b *Backend) wrap(err error) error {
	if err != nil && b.closed.Load() && !errors.Is(err, backend.ErrClosed) {
		return fmt.Errorf("%w: %w", backend.ErrClosed, err)
	}
	return err
}
