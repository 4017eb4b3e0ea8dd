package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/internal/boundary"
)

// MaxItemSize is DynamoDB's item size limit, in bytes.
const MaxItemSize = 400 * 1024

// MaxCommitSize is the largest commit item, in bytes as DynamoDB measures
// them, that Append writes: MaxItemSize less 1 KB of headroom. A larger
// commit is rejected with a *backend.CommitTooLargeError before anything is
// sent.
const MaxCommitSize = MaxItemSize - 1024

// DefaultBoundaryCacheSize is the number of streams whose latest known commit
// boundary a Backend remembers unless WithBoundaryCache says otherwise.
const DefaultBoundaryCacheSize = 10000

// Option configures a Backend.
type Option func(*config)

type config struct {
	cacheSize  int
	queryLimit int32
	noOutbox   bool
}

// WithBoundaryCache sets how many streams' latest known commit boundary the
// backend remembers (default DefaultBoundaryCacheSize), and how many streams'
// latest published commit (see Pending). A boundary is the last sequence of
// a commit item the backend has written or read; because items are never
// changed, it stays true. An append at a known boundary needs only its
// conditional PutItem; any other append at expected > 0 first reads the
// stream's head. n <= 0 disables the caches: every such append, some loads
// and some Pending calls then cost one more Query. Disable them if anything
// deletes event items out of band while the backend runs.
func WithBoundaryCache(n int) Option {
	return func(c *config) { c.cacheSize = max(n, 0) }
}

// WithQueryLimit caps the number of commit items read per Query page
// (default: no cap, so DynamoDB returns pages of up to 1 MB). Smaller pages
// lower the memory a load holds at once and the data read past an early
// stop, at the price of more round trips. n <= 0 means no cap.
func WithQueryLimit(n int32) Option {
	return func(c *config) { c.queryLimit = max(n, 0) }
}

// WithoutOutbox turns the outbox marker off: Append writes commit items
// without it, so they are never pending, cost no index write, and the table
// needs no outbox index (NewBackend then accepts a table made by an earlier
// version). Use it in applications that do not relay commits from the
// store. Pending and MarkPublished still serve the commits other backends
// marked, if the table has the index.
func WithoutOutbox() Option {
	return func(c *config) { c.noOutbox = true }
}

// Backend is a backend.Backend storing each commit as one DynamoDB item, and
// a backend.Outbox (see Pending). It is safe for concurrent use by multiple
// goroutines, and several Backends (in one process or many) may share a
// table. The zero value is not usable; call NewBackend.
type Backend struct {
	client    *dynamodb.Client
	table     *string
	cfg       config
	hasIndex  bool
	closed    atomic.Bool
	bounds    *boundary.Cache  // latest commit boundary seen per stream
	published *boundary.Cache  // latest commit known published per stream
	now       func() time.Time // the outbox clock
}

var (
	_ backend.Backend = (*Backend)(nil)
	_ backend.Outbox  = (*Backend)(nil)
)

// NewBackend returns a Backend over table, using client (which the caller
// keeps owning: Close does not touch it). It reads the table's description
// once (one DescribeTable call) and fails with a *SchemaError (matching
// ErrTableSchema) if the key schema is not the package's or, unless the
// backend is opened WithoutOutbox, the table has no outbox index; or with
// the SDK's error (for example *types.ResourceNotFoundException) if the
// table cannot be described.
func NewBackend(ctx context.Context, client *dynamodb.Client, table string, opts ...Option) (*Backend, error) {
	if client == nil {
		return nil, errors.New("dynamostore: NewBackend: nil client")
	}
	cfg := config{cacheSize: DefaultBoundaryCacheSize}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	hasIndex, err := describe(ctx, client, table, !cfg.noOutbox)
	if err != nil {
		return nil, err
	}
	return &Backend{
		client:    client,
		table:     aws.String(table),
		cfg:       cfg,
		hasIndex:  hasIndex,
		bounds:    boundary.New(cfg.cacheSize),
		published: boundary.New(cfg.cacheSize),
		now:       time.Now,
	}, nil
}

// Close marks the backend closed: later calls return an error matching
// backend.ErrClosed. It does not close or otherwise affect the client,
// which the caller owns. Close is idempotent.
func (b *Backend) Close() error {
	b.closed.Store(true)
	b.bounds.Reset()
	b.published.Reset()
	return nil
}

// Append stores the commit's records as one item, with a PutItem
// conditional on no item existing at (stream, c.Expected+1). It first checks
// the commit with backend.CheckAppend and sends nothing if that fails
// (invalid metadata included: real DynamoDB refuses an empty map key). It
// returns a *backend.ConflictError (matching backend.ErrConcurrency), having
// stored nothing, if the stream's last sequence is not c.Expected; a
// *backend.CommitTooLargeError if the item would exceed MaxCommitSize; and
// an error matching backend.ErrUnknownOutcome when a server fault, network
// error, timeout or cancellation leaves the put's result unknown. Service
// errors are wrapped with %w after the SDK's retryer has given up; every
// error names the stream.
//
// Unless the backend was opened WithoutOutbox, the item carries the outbox
// marker, so the commit is pending (see Pending) from the moment it is
// stored: no second write, no transaction.
//
// Round trips: one PutItem when c.Expected is 0 or a commit boundary this
// backend has seen (the usual load-then-commit path); otherwise one Query
// for the stream's head first. When the put's condition fails, one GetItem
// tells a real conflict from the SDK retrying a put whose first attempt had
// in fact succeeded: the item at the key then carries this commit's ID, and
// Append reports success.
func (b *Backend) Append(ctx context.Context, c backend.Commit) error {
	if b.closed.Load() {
		return fmt.Errorf("dynamostore: append to %s: %w", c.Stream, backend.ErrClosed)
	}
	if err := backend.CheckAppend(c); err != nil {
		return fmt.Errorf("dynamostore: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dynamostore: append to %s after sequence %d: %w", c.Stream, c.Expected, err)
	}
	if len(c.Records) == 0 {
		return nil
	}
	pk := c.Stream.String()
	layout := layoutOf(c.Records)
	var m *marker
	if !b.cfg.noOutbox {
		m = &marker{shard: shardOf(pk), at: b.now().UnixNano()}
	}
	if size := commitSize(pk, c, layout, m); size > MaxCommitSize {
		return &backend.CommitTooLargeError{Stream: c.Stream, Events: len(c.Records), Size: size, Limit: MaxCommitSize}
	}
	if c.Expected > 0 && !b.bounds.Known(pk, c.Expected) {
		head, err := b.head(ctx, c.Stream, pk)
		if err != nil {
			return fmt.Errorf("dynamostore: append to %s after sequence %d: read the head: %w", c.Stream, c.Expected, err)
		}
		if head != c.Expected {
			return &backend.ConflictError{Stream: c.Stream, Expected: c.Expected, Head: head}
		}
	}
	_, err := b.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                b.table,
		Item:                     encodeCommit(pk, c, layout, m),
		ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
		ExpressionAttributeNames: map[string]string{"#pk": attrStream},
	})
	if err != nil {
		var ccf *types.ConditionalCheckFailedException
		if !errors.As(err, &ccf) {
			if !refusedByService(err) {
				err = fmt.Errorf("%w: %w", backend.ErrUnknownOutcome, err)
			}
			return fmt.Errorf("dynamostore: append to %s after sequence %d: %w", c.Stream, c.Expected, err)
		}
		// Either another writer holds the key, or the SDK retried our own
		// put after an attempt that succeeded but whose response was lost.
		own, gerr := b.isOwnCommit(ctx, pk, c)
		if gerr != nil {
			return fmt.Errorf("dynamostore: append to %s after sequence %d: the conditional put failed and reading the competing commit failed too: %w: %w",
				c.Stream, c.Expected, backend.ErrUnknownOutcome, gerr)
		}
		if !own {
			return &backend.ConflictError{Stream: c.Stream, Expected: c.Expected, Head: -1,
				Reason: "another commit holds sequence " + strconv.FormatInt(c.First(), 10), Err: err}
		}
	}
	b.bounds.Note(pk, c.Last())
	return nil
}

// refusedByService reports whether err is the service's answer refusing
// the request as the client's fault (a 4xx such as a validation error), so
// that nothing was stored. Server faults (5xx, which DynamoDB documents as
// possibly applied), network errors, timeouts and cancelled contexts leave
// the outcome unknown.
func refusedByService(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorFault() == smithy.FaultClient
}

// isOwnCommit reports whether the item at the commit's key is the commit
// itself (its ID and last sequence), with one strongly consistent GetItem.
func (b *Backend) isOwnCommit(ctx context.Context, pk string, c backend.Commit) (bool, error) {
	out, err := b.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: b.table,
		Key: map[string]types.AttributeValue{
			attrStream: str(pk),
			attrSeq:    num(c.First()),
		},
		ConsistentRead:           aws.Bool(true),
		ProjectionExpression:     aws.String("#id, #last"),
		ExpressionAttributeNames: map[string]string{"#id": attrCommitID, "#last": attrLast},
	})
	if err != nil {
		return false, err
	}
	return ownCommit(out.Item, c), nil
}

// head returns the stream's last sequence (0 if empty) with one strongly
// consistent Query reading the last commit item's keys.
func (b *Backend) head(ctx context.Context, stream backend.StreamID, pk string) (int64, error) {
	out, err := b.client.Query(ctx, &dynamodb.QueryInput{
		TableName:                b.table,
		KeyConditionExpression:   aws.String("#pk = :pk AND #sk >= :one"),
		ExpressionAttributeNames: map[string]string{"#pk": attrStream, "#sk": attrSeq, "#last": attrLast},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":  str(pk),
			":one": num(1),
		},
		ProjectionExpression: aws.String("#pk, #sk, #last"),
		ScanIndexForward:     aws.Bool(false),
		ConsistentRead:       aws.Bool(true),
		Limit:                aws.Int32(1),
	})
	if err != nil {
		return 0, err
	}
	if len(out.Items) == 0 {
		return 0, nil
	}
	_, last, err := newDecoder(*b.table, stream).keyAndLast(out.Items[0])
	if err != nil {
		return 0, err
	}
	b.bounds.Note(pk, last)
	return last, nil
}

// Load yields the stream's records after the given sequence, in order, each
// with its commit ID ("" for items written before commit IDs), reading
// commit items with strongly consistent Queries in ascending sort key order,
// one page at a time (see WithQueryLimit), so a long history is never held
// at once. Events of the first item at or before after are skipped. A
// stored item that does not decode yields a *backend.CorruptError (matching
// backend.ErrCorruptStream) naming the stream and the item; service and
// context errors are wrapped with %w and name the stream. Breaking out of
// the loop stops reading.
//
// Round trips: one Query per page. When after > 0 is not a commit boundary
// this backend has seen and the first item found does not start at after+1,
// one more Query fetches the commit holding after+1, which begins before it.
func (b *Backend) Load(ctx context.Context, stream backend.StreamID, after int64) iter.Seq2[backend.Record, error] {
	return func(yield func(backend.Record, error) bool) {
		fail := func(err error) {
			yield(backend.Record{}, fmt.Errorf("dynamostore: load %s after sequence %d: %w", stream, after, err))
		}
		if b.closed.Load() {
			fail(backend.ErrClosed)
			return
		}
		if err := stream.Validate(); err != nil {
			fail(err)
			return
		}
		if err := ctx.Err(); err != nil {
			fail(err)
			return
		}
		after = max(after, 0)
		if after == math.MaxInt64 {
			return // nothing can follow
		}
		pk := stream.String()
		d := newDecoder(*b.table, stream)
		// Commit items tile the sequence space, so the one holding after+1
		// starts at after+1 exactly when after is a commit boundary.
		lookBack := after > 0 && !b.bounds.Known(pk, after)
		highest := int64(0)
		defer func() { b.bounds.Note(pk, highest) }()
		emit := func(item map[string]types.AttributeValue) bool {
			c, err := d.commit(item)
			if err != nil {
				yield(backend.Record{}, err)
				return false
			}
			highest = max(highest, c.last)
			for _, r := range c.records {
				if r.Sequence <= after {
					continue
				}
				if err := ctx.Err(); err != nil {
					fail(err)
					return false
				}
				if !yield(r, nil) {
					return false
				}
			}
			return true
		}
		in := &dynamodb.QueryInput{
			TableName:                b.table,
			KeyConditionExpression:   aws.String("#pk = :pk AND #sk >= :from"),
			ExpressionAttributeNames: map[string]string{"#pk": attrStream, "#sk": attrSeq},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":pk":   str(pk),
				":from": num(after + 1),
			},
			ConsistentRead: aws.Bool(true),
		}
		if b.cfg.queryLimit > 0 {
			in.Limit = aws.Int32(b.cfg.queryLimit)
		}
		for {
			if b.closed.Load() {
				fail(backend.ErrClosed)
				return
			}
			if err := ctx.Err(); err != nil {
				fail(err)
				return
			}
			out, err := b.client.Query(ctx, in)
			if err != nil {
				fail(err)
				return
			}
			if lookBack && (len(out.Items) > 0 || out.LastEvaluatedKey == nil) {
				lookBack = false
				if len(out.Items) == 0 || !startsAt(out.Items[0], after+1) {
					prev, err := b.commitBefore(ctx, pk, after+1)
					if err != nil {
						fail(err)
						return
					}
					if prev != nil && !emit(prev) {
						return
					}
				}
			}
			for _, item := range out.Items {
				if !emit(item) {
					return
				}
			}
			if len(out.LastEvaluatedKey) == 0 {
				return
			}
			in.ExclusiveStartKey = out.LastEvaluatedKey
		}
	}
}

// startsAt reports whether item's sort key is seq. An undecodable key
// reports false; decoding the item later reports it.
func startsAt(item map[string]types.AttributeValue, seq int64) bool {
	n, ok := item[attrSeq].(*types.AttributeValueMemberN)
	return ok && n.Value == strconv.FormatInt(seq, 10)
}

// commitBefore returns the last commit item whose sort key is in [1, seq),
// or nil if there is none, with one strongly consistent Query.
func (b *Backend) commitBefore(ctx context.Context, pk string, seq int64) (map[string]types.AttributeValue, error) {
	if seq <= 1 {
		return nil, nil
	}
	out, err := b.client.Query(ctx, &dynamodb.QueryInput{
		TableName:                b.table,
		KeyConditionExpression:   aws.String("#pk = :pk AND #sk BETWEEN :one AND :seq"),
		ExpressionAttributeNames: map[string]string{"#pk": attrStream, "#sk": attrSeq},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":  str(pk),
			":one": num(1),
			":seq": num(seq - 1),
		},
		ScanIndexForward: aws.Bool(false),
		ConsistentRead:   aws.Bool(true),
		Limit:            aws.Int32(1),
	})
	if err != nil {
		return nil, err
	}
	if len(out.Items) == 0 {
		return nil, nil
	}
	return out.Items[0], nil
}
