package dynamostore

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/aggregatekit/eventsourcing/backend"
)

// SnapshotStore is a backend.SnapshotStore keeping one item per stream at
// sort key 0 of a table with the package's key schema: the event table
// itself (event items start at sort key 1, so the two never collide, loads
// never read snapshots and snapshots are never pending in the outbox) or a
// table of its own made with CreateTable. It is safe for concurrent use by
// multiple goroutines. The zero value is not usable; call NewSnapshotStore.
//
// Each call is one round trip: Get a strongly consistent GetItem, Put a
// conditional PutItem, Delete a DeleteItem.
type SnapshotStore struct {
	client *dynamodb.Client
	table  *string
}

var _ backend.SnapshotStore = (*SnapshotStore)(nil)

// NewSnapshotStore returns a SnapshotStore over table, using client (which
// the caller keeps owning). Like NewBackend it checks the table's key schema
// once with DescribeTable and fails with a *SchemaError if it is wrong; it
// does not need the outbox index.
func NewSnapshotStore(ctx context.Context, client *dynamodb.Client, table string) (*SnapshotStore, error) {
	if client == nil {
		return nil, errors.New("dynamostore: NewSnapshotStore: nil client")
	}
	if _, err := describe(ctx, client, table, false); err != nil {
		return nil, err
	}
	return &SnapshotStore{client: client, table: aws.String(table)}, nil
}

func snapshotKey(stream backend.StreamID) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrStream: str(stream.String()),
		attrSeq:    num(0),
	}
}

// Get returns the stream's snapshot, or an error matching
// backend.ErrSnapshotNotFound. A stored item that does not decode yields a
// *backend.CorruptError that also matches backend.ErrInvalidSnapshot, so
// the snapshot middleware falls back to a full replay.
func (s *SnapshotStore) Get(ctx context.Context, stream backend.StreamID) (backend.Snapshot, error) {
	if err := stream.Validate(); err != nil {
		return backend.Snapshot{}, fmt.Errorf("dynamostore: get snapshot: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return backend.Snapshot{}, fmt.Errorf("dynamostore: get snapshot of %s: %w", stream, err)
	}
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      s.table,
		Key:            snapshotKey(stream),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return backend.Snapshot{}, fmt.Errorf("dynamostore: get snapshot of %s: %w", stream, err)
	}
	if out.Item == nil {
		return backend.Snapshot{}, fmt.Errorf("dynamostore: get snapshot of %s: %w", stream, backend.ErrSnapshotNotFound)
	}
	snap, err := s.decode(stream, out.Item)
	if err != nil {
		return backend.Snapshot{}, fmt.Errorf("dynamostore: get snapshot of %s: %w", stream, &invalidSnapshotError{err})
	}
	return snap, nil
}

func (s *SnapshotStore) decode(stream backend.StreamID, item map[string]types.AttributeValue) (backend.Snapshot, error) {
	d := newDecoder(*s.table, stream)
	snap := backend.Snapshot{Stream: stream}
	var err error
	if snap.Sequence, err = d.int(item, attrSnapSeq, 0); err != nil {
		return backend.Snapshot{}, err
	}
	if snap.Sequence < 1 {
		return backend.Snapshot{}, d.corrupt(0, "snapshot sequence below 1")
	}
	ver, err := d.int(item, attrSnapVersion, snap.Sequence)
	if err != nil {
		return backend.Snapshot{}, err
	}
	if int64(int(ver)) != ver {
		return backend.Snapshot{}, d.corrupt(snap.Sequence, "snapshot version out of range")
	}
	snap.Version = int(ver)
	if v, ok := item[attrSnapState]; ok {
		b, ok := v.(*types.AttributeValueMemberB)
		if !ok {
			return backend.Snapshot{}, d.corrupt(snap.Sequence, "snapshot state is not binary")
		}
		snap.State = b.Value
	}
	if snap.State == nil {
		snap.State = []byte{}
	}
	if snap.Time, err = d.itemTime(item, attrSnapTime, snap.Sequence); err != nil {
		return backend.Snapshot{}, err
	}
	return snap, nil
}

// invalidSnapshotError marks a corrupt snapshot item as an invalid snapshot
// too, so the snapshot middleware falls back to a full replay.
type invalidSnapshotError struct{ err error }

func (e *invalidSnapshotError) Error() string        { return e.err.Error() }
func (e *invalidSnapshotError) Unwrap() error        { return e.err }
func (e *invalidSnapshotError) Is(target error) bool { return target == backend.ErrInvalidSnapshot }

// snapshotSize is an upper bound of the size DynamoDB measures for the item.
func snapshotSize(pk string, snap backend.Snapshot) int {
	return len(attrStream) + len(pk) + len(attrSeq) + numberSize(0) +
		len(attrSnapSeq) + numberSize(snap.Sequence) +
		len(attrSnapVersion) + numberSize(int64(snap.Version)) +
		len(attrSnapState) + len(snap.State) +
		len(attrSnapTime) + decimalSize(timeString(snap.Time))
}

// Put stores snap with a PutItem conditional on the stream having no
// snapshot, or one at a sequence no later than snap's, or one whose sequence
// attribute is not a number (a corrupt item, which it replaces). When a later
// snapshot is held the condition fails, nothing is stored, and Put returns
// nil, so an older snapshot never replaces a newer one, even between racing
// writers. It first checks snap with backend.CheckSnapshot (a sequence
// below 1 or a time outside years 1 to 9999 is refused with an error
// matching backend.ErrInvalidSnapshot); a snapshot too large for one item
// returns an error matching ErrSnapshotTooLarge. Neither writes anything.
func (s *SnapshotStore) Put(ctx context.Context, snap backend.Snapshot) error {
	if err := backend.CheckSnapshot(snap); err != nil {
		return fmt.Errorf("dynamostore: put snapshot: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dynamostore: put snapshot of %s at sequence %d: %w", snap.Stream, snap.Sequence, err)
	}
	pk := snap.Stream.String()
	if size := snapshotSize(pk, snap); size > MaxCommitSize {
		return fmt.Errorf("dynamostore: snapshot of %s at sequence %d is %d bytes, over the limit of %d: %w",
			snap.Stream, snap.Sequence, size, MaxCommitSize, ErrSnapshotTooLarge)
	}
	item := snapshotKey(snap.Stream)
	item[attrSnapSeq] = num(snap.Sequence)
	item[attrSnapVersion] = num(int64(snap.Version))
	if len(snap.State) > 0 {
		item[attrSnapState] = &types.AttributeValueMemberB{Value: snap.State}
	}
	item[attrSnapTime] = &types.AttributeValueMemberN{Value: timeString(snap.Time)}
	_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 s.table,
		Item:                      item,
		ConditionExpression:       aws.String("attribute_not_exists(#pk) OR NOT attribute_type(#at, :n) OR #at <= :at"),
		ExpressionAttributeNames:  map[string]string{"#pk": attrStream, "#at": attrSnapSeq},
		ExpressionAttributeValues: map[string]types.AttributeValue{":at": num(snap.Sequence), ":n": str("N")},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return nil // a newer snapshot is stored
	}
	if err != nil {
		return fmt.Errorf("dynamostore: put snapshot of %s at sequence %d: %w", snap.Stream, snap.Sequence, err)
	}
	return nil
}

// Delete removes the stream's snapshot; deleting a missing one is not an
// error.
func (s *SnapshotStore) Delete(ctx context.Context, stream backend.StreamID) error {
	if err := stream.Validate(); err != nil {
		return fmt.Errorf("dynamostore: delete snapshot: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dynamostore: delete snapshot of %s: %w", stream, err)
	}
	_, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: s.table, Key: snapshotKey(stream)})
	if err != nil {
		return fmt.Errorf("dynamostore: delete snapshot of %s: %w", stream, err)
	}
	return nil
}
