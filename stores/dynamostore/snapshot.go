package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	es "github.com/aggregatekit/eventsourcing"
)

// SnapshotStore is an eventsourcing.SnapshotStore keeping one item per stream
// at sort key 0 of a table with the package's key schema: the event table
// itself (event items start at sort key 1, so the two never collide and loads
// never read snapshots) or a table of its own made with CreateTable. It is
// safe for concurrent use by multiple goroutines. The zero value is not
// usable; call NewSnapshotStore.
//
// Each call is one round trip: Get a strongly consistent GetItem, Put a
// conditional PutItem, Delete a DeleteItem.
type SnapshotStore struct {
	client *ddb.Client
	table  *string
}

// NewSnapshotStore returns a SnapshotStore over table, using client (which
// the caller keeps owning). Like NewBackend it checks the table's key schema
// once with DescribeTable and fails with a *SchemaError if it is wrong.
func NewSnapshotStore(ctx context.Context, client *ddb.Client, table string) (*SnapshotStore, error) {
	if client == nil {
		return nil, errors.New("dynamodb: NewSnapshotStore: nil client")
	}
	if err := describeAndCheck(ctx, client, table); err != nil {
		return nil, err
	}
	return &SnapshotStore{client: client, table: aws.String(table)}, nil
}

func snapshotKey(stream es.StreamID) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrStream: &types.AttributeValueMemberS{Value: stream.String()},
		attrSeq:    num(0),
	}
}

// Get returns the stream's snapshot, or an error matching
// eventsourcing.ErrSnapshotNotFound. A stored item that does not decode
// yields a *CorruptItemError, which also matches
// eventsourcing.ErrInvalidSnapshot.
func (s *SnapshotStore) Get(ctx context.Context, stream es.StreamID) (es.Snapshot, error) {
	if err := stream.Validate(); err != nil {
		return es.Snapshot{}, err
	}
	out, err := s.client.GetItem(ctx, &ddb.GetItemInput{
		TableName:      s.table,
		Key:            snapshotKey(stream),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return es.Snapshot{}, fmt.Errorf("dynamodb: get snapshot of stream %s: %w", stream, err)
	}
	if out.Item == nil {
		return es.Snapshot{}, fmt.Errorf("dynamodb: stream %s: %w", stream, es.ErrSnapshotNotFound)
	}
	snap, err := s.decode(stream, out.Item)
	if err != nil {
		return es.Snapshot{}, &invalidSnapshotError{err}
	}
	return snap, nil
}

func (s *SnapshotStore) decode(stream es.StreamID, item map[string]types.AttributeValue) (es.Snapshot, error) {
	d := decoder{table: *s.table, stream: stream, pk: stream.String()}
	snap := es.Snapshot{Stream: stream}
	var err error
	if snap.Sequence, err = d.int(item, attrSnapSeq, 0); err != nil {
		return es.Snapshot{}, err
	}
	if snap.Sequence < 0 {
		return es.Snapshot{}, d.corrupt(0, "negative snapshot sequence")
	}
	ver, err := d.int(item, attrSnapVersion, snap.Sequence)
	if err != nil {
		return es.Snapshot{}, err
	}
	if int64(int(ver)) != ver {
		return es.Snapshot{}, d.corrupt(snap.Sequence, "snapshot version out of range")
	}
	snap.Version = int(ver)
	if v, ok := item[attrSnapState]; ok {
		b, ok := v.(*types.AttributeValueMemberB)
		if !ok {
			return es.Snapshot{}, d.corrupt(snap.Sequence, "snapshot state is not binary")
		}
		snap.State = b.Value
	}
	if snap.State == nil {
		snap.State = []byte{}
	}
	if v, ok := item[attrSnapTime]; ok {
		if snap.Time, err = d.time(v, attrSnapTime, snap.Sequence); err != nil {
			return es.Snapshot{}, err
		}
	}
	return snap, nil
}

// invalidSnapshotError marks a corrupt snapshot item as an invalid snapshot
// too, so the snapshot middleware falls back to a full replay.
type invalidSnapshotError struct{ err error }

func (e *invalidSnapshotError) Error() string        { return e.err.Error() }
func (e *invalidSnapshotError) Unwrap() error        { return e.err }
func (e *invalidSnapshotError) Is(target error) bool { return target == es.ErrInvalidSnapshot }

// snapshotSize is an upper bound of the size DynamoDB measures for the item.
func snapshotSize(pk string, snap es.Snapshot) int {
	n := len(attrStream) + len(pk) + len(attrSeq) + numberSize(0) +
		len(attrSnapSeq) + numberSize(snap.Sequence) +
		len(attrSnapVersion) + numberSize(int64(snap.Version)) +
		len(attrSnapState) + len(snap.State)
	if !snap.Time.IsZero() {
		n += len(attrSnapTime) + numberSize(snap.Time.UnixNano())
	}
	return n
}

// Put stores snap with a PutItem conditional on the stream having no
// snapshot, or one at a sequence no later than snap's, or one whose sequence
// attribute is not a number (a corrupt item, which it replaces). When a later
// snapshot is held the condition fails, nothing is stored, and Put returns
// nil, so an older snapshot never replaces a newer one, even between racing
// writers. A snapshot too large for one item returns an error matching
// ErrSnapshotTooLarge without writing; a negative sequence, or a time outside
// the years 1678-2262 (times are stored as Unix nanoseconds), returns an
// error without writing.
func (s *SnapshotStore) Put(ctx context.Context, snap es.Snapshot) error {
	if err := snap.Stream.Validate(); err != nil {
		return err
	}
	if snap.Sequence < 0 {
		return fmt.Errorf("dynamodb: put snapshot of stream %s: negative sequence %d", snap.Stream, snap.Sequence)
	}
	if !validTime(snap.Time) {
		return fmt.Errorf("dynamodb: put snapshot of stream %s: time %v is outside the years 1678-2262 that Unix nanoseconds cover",
			snap.Stream, snap.Time)
	}
	pk := snap.Stream.String()
	if size := snapshotSize(pk, snap); size > MaxCommitSize {
		return fmt.Errorf("dynamodb: snapshot of stream %s at sequence %d is %d bytes, over the limit of %d: %w",
			snap.Stream, snap.Sequence, size, MaxCommitSize, ErrSnapshotTooLarge)
	}
	item := snapshotKey(snap.Stream)
	item[attrSnapSeq] = num(snap.Sequence)
	item[attrSnapVersion] = num(int64(snap.Version))
	if len(snap.State) > 0 {
		item[attrSnapState] = &types.AttributeValueMemberB{Value: snap.State}
	}
	if !snap.Time.IsZero() {
		item[attrSnapTime] = num(snap.Time.UnixNano())
	}
	_, err := s.client.PutItem(ctx, &ddb.PutItemInput{
		TableName:                 s.table,
		Item:                      item,
		ConditionExpression:       aws.String("attribute_not_exists(#pk) OR NOT attribute_type(#at, :n) OR #at <= :at"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrStream, "#at": attrSnapSeq},
		ExpressionAttributeValues: map[string]types.AttributeValue{":at": num(snap.Sequence), ":n": &types.AttributeValueMemberS{Value: "N"}},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return nil // a newer snapshot is stored
	}
	if err != nil {
		return fmt.Errorf("dynamodb: put snapshot of stream %s at sequence %s: %w", snap.Stream, strconv.FormatInt(snap.Sequence, 10), err)
	}
	return nil
}

// Delete removes the stream's snapshot; deleting a missing one is not an
// error.
func (s *SnapshotStore) Delete(ctx context.Context, stream es.StreamID) error {
	if err := stream.Validate(); err != nil {
		return err
	}
	_, err := s.client.DeleteItem(ctx, &ddb.DeleteItemInput{TableName: s.table, Key: snapshotKey(stream)})
	if err != nil {
		return fmt.Errorf("dynamodb: delete snapshot of stream %s: %w", stream, err)
	}
	return nil
}
