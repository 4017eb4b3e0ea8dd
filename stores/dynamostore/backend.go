package dynamodb

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"math"
	"math/rand/v2"
	"strconv"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/aws/smithy-go"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/internal/boundary"
)

// MaxItemSize is DynamoDB's item size limit, in bytes.
const MaxItemSize = 400 * 1024

// MaxCommitSize is the largest commit item, in bytes as DynamoDB measures
// them, that Append writes: MaxItemSize less 1 KB of headroom. A larger
// commit is rejected with an *eventsourcing.CommitTooLargeError before
// anything is sent.
const MaxCommitSize = MaxItemSize - 1024

// DefaultBoundaryCacheSize is the number of streams whose latest known commit
// boundary a Backend remembers unless WithBoundaryCache says otherwise.
const DefaultBoundaryCacheSize = 10000

// Option configures a Backend.
type Option func(*config)

type config struct {
	cacheSize  int
	queryLimit int32
}

// WithBoundaryCache sets how many streams' latest known commit boundary the
// backend remembers (default DefaultBoundaryCacheSize). A boundary is the
// last sequence of a commit item the backend has written or read; because
// items are never changed, it stays true. An append at a known boundary
// needs only its conditional PutItem; any other append at expected > 0 first
// reads the stream's head. n <= 0 disables the cache: every such append and
// some loads then cost one more Query. Disable it if anything deletes event
// items out of band while the backend runs.
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

// Backend is an eventsourcing.Backend storing each commit as one DynamoDB
// item. It is safe for concurrent use by multiple goroutines, and several
// Backends (in one process or many) may share a table. The zero value is not
// usable; call NewBackend.
type Backend struct {
	client *ddb.Client
	table  *string
	cfg    config
	closed atomic.Bool
	bounds *boundary.Cache
}

// NewBackend returns a Backend over table, using client (which the caller
// keeps owning: Close does not touch it). It reads the table's description
// once (one DescribeTable call) and fails with a *SchemaError (matching
// ErrTableSchema) if the key schema is not the package's, or with the SDK's
// error (for example *types.ResourceNotFoundException) if the table cannot be
// described.
func NewBackend(ctx context.Context, client *ddb.Client, table string, opts ...Option) (*Backend, error) {
	if client == nil {
		return nil, errors.New("dynamodb: NewBackend: nil client")
	}
	cfg := config{cacheSize: DefaultBoundaryCacheSize}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if err := describeAndCheck(ctx, client, table); err != nil {
		return nil, err
	}
	return &Backend{client: client, table: aws.String(table), cfg: cfg, bounds: boundary.New(cfg.cacheSize)}, nil
}

// NewStore returns an EventStore over a new Backend: NewBackend adapted by
// eventsourcing.NewStore. Closing the store closes the backend, not the
// client.
func NewStore(ctx context.Context, client *ddb.Client, table string, opts ...Option) (es.EventStore, error) {
	b, err := NewBackend(ctx, client, table, opts...)
	if err != nil {
		return nil, err
	}
	return es.NewStore(b), nil
}

// Close marks the backend closed: later calls return
// eventsourcing.ErrClosed. It does not close or otherwise affect the client,
// which the caller owns. Close is idempotent.
func (b *Backend) Close() error {
	b.closed.Store(true)
	b.bounds.Reset()
	return nil
}

// Append stores records as one item, with a PutItem conditional on no item
// existing at (stream, expected+1). A server fault, network error or timeout
// that leaves the put's result unknown yields an error matching
// eventsourcing.ErrUnknownOutcome. It returns an error matching
// eventsourcing.ErrConcurrency, having stored nothing, if the stream's last
// sequence is not expected; an *eventsourcing.CommitTooLargeError if the
// item would exceed MaxCommitSize; and errors wrapping ErrInvalidAppend or
// ErrInvalidStream for bad arguments, including timestamps outside the years
// 1678-2262 (stored as Unix nanoseconds). Service errors are wrapped with %w
// after the SDK's retryer has given up.
//
// Round trips: one PutItem when expected is 0 or a commit boundary this
// backend has seen (the usual load-then-commit path); otherwise one Query for
// the stream's head first. When the put's condition fails, one GetItem tells
// a real conflict from the SDK retrying a put whose first attempt had in fact
// succeeded (which Append then reports as success).
func (b *Backend) Append(ctx context.Context, stream es.StreamID, expected int64, records []es.Record) error {
	if b.closed.Load() {
		return es.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := es.CheckAppend(stream, expected, records); err != nil {
		return err
	}
	if len(records) == 0 {
		return nil
	}
	if expected > math.MaxInt64-int64(len(records)) {
		return fmt.Errorf("%w: sequences past %d overflow", es.ErrInvalidAppend, int64(math.MaxInt64))
	}
	for i, r := range records {
		if !validTime(r.Timestamp) {
			return fmt.Errorf("%w: record %d has timestamp %v, outside the years 1678-2262 that Unix nanoseconds cover",
				es.ErrInvalidAppend, i, r.Timestamp)
		}
	}
	pk := stream.String()
	layout := layoutOf(records)
	if size := commitSize(pk, records, layout); size > MaxCommitSize {
		return &es.CommitTooLargeError{Stream: stream, Events: len(records), Size: size, Limit: MaxCommitSize}
	}
	if expected > 0 && !b.bounds.Known(pk, expected) {
		head, err := b.head(ctx, stream, pk)
		if err != nil {
			return fmt.Errorf("dynamodb: append to stream %s: %w", stream, err)
		}
		if head != expected {
			return &conflictError{stream: stream, expected: expected, head: head}
		}
	}
	cid := newCommitID()
	item := encodeCommit(pk, records, layout, cid)
	_, err := b.client.PutItem(ctx, &ddb.PutItemInput{
		TableName:                b.table,
		Item:                     item,
		ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
		ExpressionAttributeNames: map[string]string{"#pk": attrStream},
	})
	if err != nil {
		var ccf *types.ConditionalCheckFailedException
		if !errors.As(err, &ccf) {
			if !refusedByService(err) {
				err = fmt.Errorf("%w: %w", es.ErrUnknownOutcome, err)
			}
			return fmt.Errorf("dynamodb: append to stream %s: %w", stream, err)
		}
		// Either another writer holds the key, or the SDK retried our own
		// put after an attempt that succeeded but whose response was lost.
		own, gerr := b.isOwnCommit(ctx, pk, expected+1, cid)
		if gerr != nil {
			return fmt.Errorf("dynamodb: append to stream %s: the conditional put failed and reading the competing commit failed too: %w: %w", stream, es.ErrUnknownOutcome, gerr)
		}
		if !own {
			return &conflictError{stream: stream, expected: expected, head: -1}
		}
	}
	b.bounds.Note(pk, records[len(records)-1].Sequence)
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

func newCommitID() []byte {
	cid := make([]byte, commitIDLen)
	binary.LittleEndian.PutUint64(cid, rand.Uint64())
	binary.LittleEndian.PutUint64(cid[8:], rand.Uint64())
	return cid
}

// isOwnCommit reads the commit ID of the item at (pk, seq).
func (b *Backend) isOwnCommit(ctx context.Context, pk string, seq int64, cid []byte) (bool, error) {
	out, err := b.client.GetItem(ctx, &ddb.GetItemInput{
		TableName: b.table,
		Key: map[string]types.AttributeValue{
			attrStream: &types.AttributeValueMemberS{Value: pk},
			attrSeq:    num(seq),
		},
		ConsistentRead:           aws.Bool(true),
		ProjectionExpression:     aws.String("#cid"),
		ExpressionAttributeNames: map[string]string{"#cid": attrCommitID},
	})
	if err != nil {
		return false, err
	}
	return ownCommit(out.Item, cid), nil
}

// head returns the stream's last sequence (0 if empty) with one strongly
// consistent Query reading the last commit item's keys.
func (b *Backend) head(ctx context.Context, stream es.StreamID, pk string) (int64, error) {
	out, err := b.client.Query(ctx, &ddb.QueryInput{
		TableName:                b.table,
		KeyConditionExpression:   aws.String("#pk = :pk AND #sk >= :one"),
		ExpressionAttributeNames: map[string]string{"#pk": attrStream, "#sk": attrSeq, "#last": attrLast},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":  &types.AttributeValueMemberS{Value: pk},
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
	d := decoder{table: *b.table, stream: stream, pk: pk}
	_, last, err := d.keyAndLast(out.Items[0])
	if err != nil {
		return 0, err
	}
	b.bounds.Note(pk, last)
	return last, nil
}

// Load yields the stream's records after the given sequence, in order,
// reading commit items with strongly consistent Queries in ascending sort key
// order, one page at a time (see WithQueryLimit), so a long history is never
// held at once. Events of the first item at or before after are skipped. A
// stored item that does not decode yields a *CorruptItemError (matching
// eventsourcing.ErrCorruptStream); service errors are wrapped with %w.
// Breaking out of the loop stops reading.
//
// Round trips: one Query per page. When after > 0 is not a commit boundary
// this backend has seen and the first item found does not start at after+1,
// one more Query fetches the commit holding after+1, which begins before it.
func (b *Backend) Load(ctx context.Context, stream es.StreamID, after int64) iter.Seq2[es.Record, error] {
	return func(yield func(es.Record, error) bool) {
		if b.closed.Load() {
			yield(es.Record{}, es.ErrClosed)
			return
		}
		if err := stream.Validate(); err != nil {
			yield(es.Record{}, err)
			return
		}
		after = max(after, 0)
		if after == math.MaxInt64 {
			return // nothing can follow
		}
		pk := stream.String()
		d := decoder{table: *b.table, stream: stream, pk: pk}
		// Commit items tile the sequence space, so the one holding after+1
		// starts at after+1 exactly when after is a commit boundary.
		lookBack := after > 0 && !b.bounds.Known(pk, after)
		highest := int64(0)
		defer func() { b.bounds.Note(pk, highest) }()
		emit := func(item map[string]types.AttributeValue) bool {
			c, err := d.commit(item)
			if err != nil {
				yield(es.Record{}, err)
				return false
			}
			highest = max(highest, c.last)
			for _, r := range c.records {
				if r.Sequence <= after {
					continue
				}
				if !yield(r, nil) {
					return false
				}
			}
			return true
		}
		in := &ddb.QueryInput{
			TableName:                b.table,
			KeyConditionExpression:   aws.String("#pk = :pk AND #sk >= :from"),
			ExpressionAttributeNames: map[string]string{"#pk": attrStream, "#sk": attrSeq},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":pk":   &types.AttributeValueMemberS{Value: pk},
				":from": num(after + 1),
			},
			ConsistentRead: aws.Bool(true),
		}
		if b.cfg.queryLimit > 0 {
			in.Limit = aws.Int32(b.cfg.queryLimit)
		}
		for {
			if b.closed.Load() {
				yield(es.Record{}, es.ErrClosed)
				return
			}
			out, err := b.client.Query(ctx, in)
			if err != nil {
				yield(es.Record{}, fmt.Errorf("dynamodb: load stream %s: %w", stream, err))
				return
			}
			if lookBack && (len(out.Items) > 0 || out.LastEvaluatedKey == nil) {
				lookBack = false
				if len(out.Items) == 0 || !startsAt(out.Items[0], after+1) {
					prev, err := b.commitAtOrBefore(ctx, pk, after)
					if err != nil {
						yield(es.Record{}, fmt.Errorf("dynamodb: load stream %s: %w", stream, err))
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

// commitAtOrBefore returns the last commit item whose sort key is in
// [1, seq], or nil if there is none.
func (b *Backend) commitAtOrBefore(ctx context.Context, pk string, seq int64) (map[string]types.AttributeValue, error) {
	out, err := b.client.Query(ctx, &ddb.QueryInput{
		TableName:                b.table,
		KeyConditionExpression:   aws.String("#pk = :pk AND #sk BETWEEN :one AND :seq"),
		ExpressionAttributeNames: map[string]string{"#pk": attrStream, "#sk": attrSeq},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":  &types.AttributeValueMemberS{Value: pk},
			":one": num(1),
			":seq": num(seq),
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
