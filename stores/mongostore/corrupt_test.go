package mongostore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	esmongo "github.com/aggregatekit/eventsourcing/stores/mongo"
	"github.com/aggregatekit/eventsourcing/storetest"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// commitID is the _id the store gives the commit of s ending at last.
func commitID(s es.StreamID, last int64) string {
	return fmt.Sprintf("%s/%s/%019d", s.AggregateType, s.Key, last)
}

// handWritten returns a commit document as an operator's tool might write
// it, valid unless edit damages it.
func handWritten(s es.StreamID, first, last int64, events bson.A) bson.D {
	return bson.D{
		{Key: "_id", Value: commitID(s, last)},
		{Key: "aggregate", Value: s.AggregateType}, {Key: "key", Value: s.Key},
		{Key: "first", Value: first}, {Key: "last", Value: last},
		{Key: "time", Value: bson.NewDateTimeFromTime(time.Now())}, {Key: "ns", Value: int32(0)},
		{Key: "events", Value: events},
	}
}

func addedEvent(id string) bson.D {
	return bson.D{{Key: "type", Value: "Added"}, {Key: "data", Value: []byte(`{"ID":"` + id + `"}`)}}
}

// TestCorruptDocuments writes damaged commit documents by hand and checks
// that loading them fails with ErrCorruptStream, after the intact commits
// before them and without a panic, while other streams still load and the
// stored documents are left as they were.
func TestCorruptDocuments(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	healthy := stream("healthy")
	if err := f.b.Append(ctx, healthy, 0, recs(healthy, 1, 2)); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		doc  func(s es.StreamID) bson.D
	}{
		{"first is a string", func(s es.StreamID) bson.D {
			d := handWritten(s, 2, 2, bson.A{addedEvent("x")})
			d[3].Value = "2"
			return d
		}},
		{"events missing", func(s es.StreamID) bson.D { return handWritten(s, 2, 2, bson.A{})[:7] }},
		{"events not an array", func(s es.StreamID) bson.D {
			d := handWritten(s, 2, 2, nil)
			d[7].Value = bson.D{{Key: "0", Value: addedEvent("x")}}
			return d
		}},
		{"fewer events than sequences", func(s es.StreamID) bson.D { return handWritten(s, 2, 3, bson.A{addedEvent("x")}) }},
		{"data is a string", func(s es.StreamID) bson.D {
			return handWritten(s, 2, 2, bson.A{bson.D{{Key: "type", Value: "Added"}, {Key: "data", Value: `{"ID":"x"}`}}})
		}},
		{"_id disagrees with last", func(s es.StreamID) bson.D {
			d := handWritten(s, 2, 2, bson.A{addedEvent("x")})
			d[0].Value = commitID(s, 3)
			return d
		}},
		{"event is a number", func(s es.StreamID) bson.D { return handWritten(s, 2, 2, bson.A{int64(7)}) }},
		{"time is a string", func(s es.StreamID) bson.D {
			d := handWritten(s, 2, 2, bson.A{addedEvent("x")})
			d[5].Value = "yesterday"
			return d
		}},
		{"garbage binary", func(s es.StreamID) bson.D {
			return handWritten(s, 2, 2, bson.A{bson.D{{Key: "type", Value: "Added"}, {Key: "data", Value: []byte{0xff, 0x00, 0x13, '{'}}}})
		}},
		{"unknown binary layout", func(s es.StreamID) bson.D {
			return handWritten(s, 2, 2, bson.A{bson.D{{Key: "type", Value: "Added"},
				{Key: "data", Value: bson.Binary{Subtype: 0x80, Data: []byte("{")}}}})
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := stream("corrupt-" + c.name)
			// One intact commit, then the damaged one.
			if err := f.b.Append(ctx, s, 0, []es.Record{{Stream: s, Sequence: 1, EventType: "Added", Data: []byte(`{"ID":"ok"}`), Timestamp: time.Now()}}); err != nil {
				t.Fatal(err)
			}
			if _, err := f.coll.InsertOne(ctx, c.doc(s)); err != nil {
				t.Fatalf("insert by hand: %v", err)
			}
			before, err := f.coll.CountDocuments(ctx, bson.D{})
			if err != nil {
				t.Fatal(err)
			}

			got, err := load(ctx, f.b, s, 0)
			if c.name == "garbage binary" || c.name == "unknown binary layout" {
				// Data is opaque to the backend: it loads, and the codec refuses it.
				if err != nil || len(got) != 2 {
					t.Fatalf("backend load: %d records, %v", len(got), err)
				}
			} else {
				if !errors.Is(err, es.ErrCorruptStream) {
					t.Fatalf("backend load: got %v, want ErrCorruptStream", err)
				}
				if len(got) != 1 || got[0].Sequence != 1 {
					t.Fatalf("backend load yielded %d records before the error, want the 1 intact one", len(got))
				}
				t.Logf("backend error: %v", err)
			}

			store := es.NewStore(f.b)
			p, err := storetest.NewProbe(s.Key, "", storetest.NewRegistry(), store)
			if err != nil {
				t.Fatal(err)
			}
			err = p.Refresh(ctx)
			if !errors.Is(err, es.ErrCorruptStream) {
				t.Fatalf("aggregate refresh: got %v, want ErrCorruptStream", err)
			}
			var re *es.RecordError
			if errors.As(err, &re) && re.Stream != s {
				t.Fatalf("record error names stream %s", re.Stream)
			}

			// Other streams still load; nothing was written or removed.
			if got, err := load(ctx, f.b, healthy, 0); err != nil || len(got) != 2 {
				t.Fatalf("healthy stream: %d records, %v", len(got), err)
			}
			if after, err := f.coll.CountDocuments(ctx, bson.D{}); err != nil || after != before {
				t.Fatalf("documents: %d before, %d after (%v)", before, after, err)
			}
			// The damaged commit blocks appends after it like any commit.
			if err := f.b.Append(ctx, s, 1, recs(s, 2, 1)); !errors.Is(err, es.ErrConcurrency) {
				t.Fatalf("append over the damaged commit: %v", err)
			}
		})
	}
}

func TestCorruptSnapshot(t *testing.T) {
	t.Parallel()
	client := connect(t)
	db := newDatabase(t, client)
	name := newCollection()
	ctx := context.Background()
	st, err := esmongo.NewSnapshotStore(client, db, name)
	if err != nil {
		t.Fatal(err)
	}
	s := stream("snap")
	if _, err := client.Database(db).Collection(name).InsertOne(ctx, bson.D{
		{Key: "_id", Value: "/" + commitID(s, 7)}, {Key: "aggregate", Value: "Probe"}, {Key: "key", Value: "snap"},
		{Key: "seq", Value: int64(7)}, {Key: "version", Value: "one"}, {Key: "state", Value: "not binary"},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, s); !errors.Is(err, es.ErrInvalidSnapshot) {
		t.Fatalf("Get of a damaged snapshot: got %v, want ErrInvalidSnapshot", err)
	}
	// A newer Put replaces it (and removes the damaged one).
	if err := st.Put(ctx, es.Snapshot{Stream: s, Sequence: 8, Version: 1, State: []byte("ok")}); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Get(ctx, s); err != nil || got.Sequence != 8 {
		t.Fatalf("Get after a newer Put: %+v, %v", got, err)
	}
	if n, _ := client.Database(db).Collection(name).CountDocuments(ctx, bson.D{}); n != 1 {
		t.Fatalf("%d snapshot documents, want 1", n)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := st.Get(cctx, s); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with a cancelled context: %v", err)
	}
	if err := st.Put(cctx, es.Snapshot{Stream: s, Sequence: 9}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with a cancelled context: %v", err)
	}
	if err := st.Delete(cctx, s); !errors.Is(err, context.Canceled) {
		t.Fatalf("Delete with a cancelled context: %v", err)
	}
	if err := st.Put(ctx, es.Snapshot{Stream: s, Sequence: -1}); !errors.Is(err, es.ErrInvalidSnapshot) {
		t.Fatalf("Put at a negative sequence: %v", err)
	}
	if _, err := st.Get(ctx, es.StreamID{AggregateType: "Probe"}); !errors.Is(err, es.ErrInvalidStream) {
		t.Fatalf("Get of an invalid stream: %v", err)
	}
}

// Snapshots and commits of the same stream can share a collection: their
// _ids never collide, and neither side's range queries see the other.
func TestSnapshotsShareTheEventsCollection(t *testing.T) {
	t.Parallel()
	client := connect(t)
	db := newDatabase(t, client)
	name := newCollection()
	ctx := context.Background()
	b, err := esmongo.NewBackend(ctx, client, db, name)
	if err != nil {
		t.Fatal(err)
	}
	st, err := esmongo.NewSnapshotStore(client, db, name)
	if err != nil {
		t.Fatal(err)
	}
	s := stream("shared")
	for seq := int64(1); seq <= 4; seq++ {
		if err := b.Append(ctx, s, seq-1, recs(s, seq, 1)); err != nil {
			t.Fatal(err)
		}
		// A snapshot at every commit's last sequence: the _id a commit has.
		if err := st.Put(ctx, es.Snapshot{Stream: s, Sequence: seq, Version: 1, State: []byte("state")}); err != nil {
			t.Fatal(err)
		}
	}
	n := int64(0)
	for r, err := range b.Load(ctx, s, 0) {
		if err != nil {
			t.Fatalf("load beside snapshots: %v", err)
		}
		if n++; r.Sequence != n {
			t.Fatalf("record %d has sequence %d", n, r.Sequence)
		}
	}
	if n != 4 {
		t.Fatalf("loaded %d events beside the snapshots, want 4", n)
	}
	if got, err := st.Get(ctx, s); err != nil || got.Sequence != 4 {
		t.Fatalf("snapshot beside the events: %+v, %v", got, err)
	}
	if err := st.Delete(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := b.Append(ctx, s, 4, recs(s, 5, 1)); err != nil {
		t.Fatalf("append after deleting the snapshots: %v", err)
	}
}
