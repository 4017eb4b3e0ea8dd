package mongostore

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/aggregatekit/eventsourcing/backend"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// SnapshotStore is a backend.SnapshotStore keeping snapshots in a
// MongoDB collection. It is safe for concurrent use by multiple goroutines,
// and any number of SnapshotStores, in any number of processes, may share a
// collection. It needs no index besides _id.
//
// A snapshot is one document per (stream, sequence), its _id derived from
// both, rather than one document per stream updated in place. Making "replace
// unless newer" a conditional update relies on the server applying an
// update's filter and its write atomically, which FerretDB does not (it
// reads, then writes: in a test of 16 racing conditional upserts an older
// snapshot replaced the newest in half of the trials). Put therefore only
// inserts a document, or replaces the one of the same sequence, and then
// deletes older ones; Get reads the newest. An older snapshot can never
// replace a newer one, on any server that keeps _id unique. See the package
// documentation for the schema and the round trips.
type SnapshotStore struct {
	coll *mongo.Collection
	// Read-only after construction.
	newest, newestSeq *options.FindOneOptionsBuilder
}

// NewSnapshotStore returns a SnapshotStore using the collection coll of the
// database db through client, which the caller owns. It does no I/O.
func NewSnapshotStore(client *mongo.Client, db, coll string) (*SnapshotStore, error) {
	if client == nil {
		return nil, errors.New("mongostore: nil client")
	}
	if db == "" || coll == "" {
		return nil, fmt.Errorf("mongostore: empty database or collection name (%q, %q)", db, coll)
	}
	byIDDesc, idIndex := bson.D{{Key: fID, Value: -1}}, bson.D{{Key: fID, Value: 1}}
	return &SnapshotStore{
		coll:      client.Database(db).Collection(coll),
		newest:    options.FindOne().SetSort(byIDDesc).SetHint(idIndex),
		newestSeq: options.FindOne().SetSort(byIDDesc).SetHint(idIndex).SetProjection(bson.D{{Key: fSequence, Value: 1}}),
	}, nil
}

// Get returns the stream's newest snapshot, an error matching
// backend.ErrSnapshotNotFound if it has none, or one matching
// backend.ErrInvalidSnapshot if the stored document cannot be read.
// One round trip.
func (s *SnapshotStore) Get(ctx context.Context, stream backend.StreamID) (backend.Snapshot, error) {
	if err := stream.Validate(); err != nil {
		return backend.Snapshot{}, err
	}
	raw, err := s.coll.FindOne(ctx, snapRange(stream, "$gte", 0, "$lte", math.MaxInt64), s.newest).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return backend.Snapshot{}, backend.ErrSnapshotNotFound
	}
	if err != nil {
		return backend.Snapshot{}, fmt.Errorf("mongostore: get snapshot of %s: %w", stream, err)
	}
	snap, err := decodeSnapshot(stream, raw)
	if err != nil {
		id, _ := lookup(raw, fID)
		return backend.Snapshot{}, fmt.Errorf("%w: mongostore: get snapshot of %s: snapshot document %s: %v", backend.ErrInvalidSnapshot, stream, idString(id), err)
	}
	return snap, nil
}

func decodeSnapshot(stream backend.StreamID, doc bson.Raw) (backend.Snapshot, error) {
	agg, err := stringField(doc, fAggregate)
	if err != nil {
		return backend.Snapshot{}, err
	}
	key, err := stringField(doc, fKey)
	if err != nil {
		return backend.Snapshot{}, err
	}
	if agg != stream.AggregateType || key != stream.Key {
		return backend.Snapshot{}, fmt.Errorf("belongs to stream %s", backend.StreamID{AggregateType: agg, Key: key})
	}
	seq, err := intField(doc, fSequence)
	if err != nil {
		return backend.Snapshot{}, err
	}
	if seq < 1 {
		return backend.Snapshot{}, fmt.Errorf("field %q is %d, want 1 or more", fSequence, seq)
	}
	if id, _ := lookup(doc, fID); id.Type != bson.TypeString || id.StringValue() != snapID(stream, seq) {
		return backend.Snapshot{}, fmt.Errorf("_id does not match sequence %d", seq)
	}
	version, err := intField(doc, fVersion)
	if err != nil {
		return backend.Snapshot{}, err
	}
	if version < math.MinInt || version > math.MaxInt {
		return backend.Snapshot{}, fmt.Errorf("field %q is %d, out of range", fVersion, version)
	}
	sv, _ := lookup(doc, fState)
	_, state, ok := sv.BinaryOK()
	if !ok {
		return backend.Snapshot{}, &fieldError{fState, sv.Type, "binary"}
	}
	ts, err := timeFields(doc)
	if err != nil {
		return backend.Snapshot{}, err
	}
	return backend.Snapshot{Stream: stream, Sequence: seq, Version: int(version), State: state, Time: ts}, nil
}

// Put stores snap unless a snapshot of the stream at a later sequence is
// stored; a snapshot at the same sequence is replaced. It then deletes the
// stream's older snapshots. A snapshot that backend.CheckSnapshot refuses
// (a sequence below 1, an invalid stream, a time outside years 1 to 9999)
// is refused before anything is sent.
//
// Round trips: one find of the newest sequence; if that is not later than
// snap's, one upsert and one delete (plus an upsert retry if another writer
// inserts the same sequence at the same moment).
func (s *SnapshotStore) Put(ctx context.Context, snap backend.Snapshot) error {
	stream := snap.Stream
	if err := backend.CheckSnapshot(snap); err != nil {
		return err
	}
	newest, err := s.coll.FindOne(ctx, snapRange(stream, "$gte", 0, "$lte", math.MaxInt64), s.newestSeq).Raw()
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
	case err != nil:
		return fmt.Errorf("mongostore: put snapshot of %s: %w", stream, err)
	default:
		if seq, err := intField(newest, fSequence); err == nil && seq > snap.Sequence {
			return nil
		}
	}

	state := snap.State
	if state == nil {
		state = []byte{}
	}
	ms, ns := splitTime(snap.Time)
	id := snapID(stream, snap.Sequence)
	doc := bson.D{
		{Key: fID, Value: id},
		{Key: fAggregate, Value: stream.AggregateType},
		{Key: fKey, Value: stream.Key},
		// The negated sequence as "first" keeps the events collection's
		// unique index on (aggregate, key, first) satisfied when snapshots
		// share that collection: commits hold first >= 1, and without
		// the field two snapshots of one stream would both count as null.
		{Key: fFirst, Value: -snap.Sequence},
		{Key: fSequence, Value: snap.Sequence},
		{Key: fVersion, Value: int64(snap.Version)},
		{Key: fState, Value: state},
		{Key: fTime, Value: ms},
		{Key: fNanos, Value: ns},
	}
	for attempt := 0; ; attempt++ {
		_, err = s.coll.ReplaceOne(ctx, bson.D{{Key: fID, Value: id}}, doc, options.Replace().SetUpsert(true))
		// Two upserts of one sequence may both try to insert; _id refuses
		// one, whose retry then replaces.
		if err == nil || !mongo.IsDuplicateKeyError(err) || attempt == 2 {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("mongostore: put snapshot of %s: %w", stream, err)
	}
	if _, err := s.coll.DeleteMany(ctx, snapRange(stream, "$gte", 0, "$lt", snap.Sequence)); err != nil {
		// The snapshot is stored and Get ignores older ones, so a failed
		// clean-up costs space, not correctness; the next Put retries it.
		return fmt.Errorf("mongostore: put snapshot of %s: stored, but deleting older snapshots failed: %w", stream, err)
	}
	return nil
}

// Delete removes the stream's snapshots; deleting none is not an error. One
// round trip.
func (s *SnapshotStore) Delete(ctx context.Context, stream backend.StreamID) error {
	if err := stream.Validate(); err != nil {
		return err
	}
	if _, err := s.coll.DeleteMany(ctx, snapRange(stream, "$gte", 0, "$lte", math.MaxInt64)); err != nil {
		return fmt.Errorf("mongostore: delete snapshot of %s: %w", stream, err)
	}
	return nil
}

// snapID is the _id of the snapshot of stream at seq: a commit's _id with a
// leading '/'. No commit _id starts with '/' (an aggregate type is never
// empty and never contains one), so snapshots and commits never collide,
// even in one collection.
func snapID(stream backend.StreamID, seq int64) string { return "/" + docID(stream, seq) }

// snapRange is idRange over snapshot ids.
func snapRange(stream backend.StreamID, lowOp string, low int64, highOp string, high int64) bson.D {
	return bson.D{
		{Key: fID, Value: bson.D{{Key: lowOp, Value: snapID(stream, low)}, {Key: highOp, Value: snapID(stream, high)}}},
		{Key: fAggregate, Value: stream.AggregateType},
		{Key: fKey, Value: stream.Key},
	}
}
