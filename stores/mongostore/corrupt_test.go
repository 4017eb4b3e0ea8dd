package mongostore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/internal/probe"
	"github.com/aggregatekit/eventsourcing/stores/mongostore"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// docID is the _id the store gives the commit of s ending at last.
func docID(s backend.StreamID, last int64) string {
	return fmt.Sprintf("%s/%s/%019d", s.AggregateType, s.Key, last)
}

// handWritten returns a commit document as an operator's tool (or a version
// of this package before commit IDs) might write it, valid unless edited.
func handWritten(s backend.StreamID, first, last int64, events bson.A) bson.D {
	return bson.D{
		{Key: "_id", Value: docID(s, last)},
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
// that loading them fails with ErrCorruptStream (a *backend.CorruptError
// naming the stream and the document), after the intact commits before
// them and without a panic, while other streams still load and the stored
// documents are left as they were.
func TestCorruptDocuments(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	healthy := stream("healthy")
	if err := f.b.Append(ctx, commitOf(healthy, 0, 2)); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		doc  func(s backend.StreamID) bson.D
	}{
		{"first is a string", func(s backend.StreamID) bson.D {
			d := handWritten(s, 2, 2, bson.A{addedEvent("x")})
			d[3].Value = "2"
			return d
		}},
		{"events missing", func(s backend.StreamID) bson.D { return handWritten(s, 2, 2, bson.A{})[:7] }},
		{"events not an array", func(s backend.StreamID) bson.D {
			d := handWritten(s, 2, 2, nil)
			d[7].Value = bson.D{{Key: "0", Value: addedEvent("x")}}
			return d
		}},
		{"fewer events than sequences", func(s backend.StreamID) bson.D { return handWritten(s, 2, 3, bson.A{addedEvent("x")}) }},
		{"data is a string", func(s backend.StreamID) bson.D {
			return handWritten(s, 2, 2, bson.A{bson.D{{Key: "type", Value: "Added"}, {Key: "data", Value: `{"ID":"x"}`}}})
		}},
		{"_id disagrees with last", func(s backend.StreamID) bson.D {
			d := handWritten(s, 2, 2, bson.A{addedEvent("x")})
			d[0].Value = docID(s, 3)
			return d
		}},
		{"event is a number", func(s backend.StreamID) bson.D { return handWritten(s, 2, 2, bson.A{int64(7)}) }},
		{"time is a string", func(s backend.StreamID) bson.D {
			d := handWritten(s, 2, 2, bson.A{addedEvent("x")})
			d[5].Value = "yesterday"
			return d
		}},
		{"commit ID is a number", func(s backend.StreamID) bson.D {
			return append(handWritten(s, 2, 2, bson.A{addedEvent("x")}), bson.E{Key: "cid", Value: int32(7)})
		}},
		{"garbage binary", func(s backend.StreamID) bson.D {
			return handWritten(s, 2, 2, bson.A{bson.D{{Key: "type", Value: "Added"}, {Key: "data", Value: []byte{0xff, 0x00, 0x13, '{'}}}})
		}},
		{"unknown binary layout", func(s backend.StreamID) bson.D {
			return handWritten(s, 2, 2, bson.A{bson.D{{Key: "type", Value: "Added"},
				{Key: "data", Value: bson.Binary{Subtype: 0x80, Data: []byte("{")}}}})
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := stream("corrupt-" + c.name)
			// One intact commit, then the damaged one.
			if err := f.b.Append(ctx, commitOf(s, 0, 1)); err != nil {
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
			opaque := c.name == "garbage binary" || c.name == "unknown binary layout"
			if opaque {
				// Data is opaque to the backend: it loads, and the codec refuses it.
				if err != nil || len(got) != 2 {
					t.Fatalf("backend load: %d records, %v", len(got), err)
				}
			} else {
				var ce *backend.CorruptError
				if !errors.As(err, &ce) || !errors.Is(err, backend.ErrCorruptStream) || ce.Stream != s {
					t.Fatalf("backend load: got %v, want a *backend.CorruptError naming %s", err, s)
				}
				if !strings.Contains(err.Error(), docID(s, 2)) && !strings.Contains(err.Error(), docID(s, 3)) {
					t.Fatalf("backend error does not name the document: %v", err)
				}
				if len(got) != 1 || got[0].Sequence != 1 {
					t.Fatalf("backend load yielded %d records before the error, want the 1 intact one", len(got))
				}
			}

			store := es.NewStore(f.b)
			p, err := probe.New(s.Key, "Probe", probe.NewRegistry(), store)
			if err != nil {
				t.Fatal(err)
			}
			err = p.Refresh(ctx)
			if !errors.Is(err, backend.ErrCorruptStream) {
				t.Fatalf("aggregate refresh: got %v, want ErrCorruptStream", err)
			}
			var re *es.RecordError
			if opaque && (!errors.As(err, &re) || re.Stream != s) {
				t.Fatalf("aggregate refresh of undecodable data: got %v, want a *RecordError naming %s", err, s)
			}

			// Other streams still load; nothing was written or removed.
			if got, err := load(ctx, f.b, healthy, 0); err != nil || len(got) != 2 {
				t.Fatalf("healthy stream: %d records, %v", len(got), err)
			}
			if after, err := f.coll.CountDocuments(ctx, bson.D{}); err != nil || after != before {
				t.Fatalf("documents: %d before, %d after (%v)", before, after, err)
			}
			// The damaged commit blocks appends after it like any commit.
			if err := f.b.Append(ctx, commitOf(s, 1, 1)); !errors.Is(err, backend.ErrConcurrency) {
				t.Fatalf("append over the damaged commit: %v", err)
			}
		})
	}
}

// Commits written before commit IDs (no cid field) load with an empty
// CommitID, beside commits that have one.
func TestCommitsWithoutIDs(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	s := stream("old")
	if _, err := f.coll.InsertOne(ctx, handWritten(s, 1, 2, bson.A{addedEvent("a"), addedEvent("b")})); err != nil {
		t.Fatal(err)
	}
	c := commitOf(s, 2, 1)
	if err := f.b.Append(ctx, c); err != nil {
		t.Fatalf("append after a commit without an ID: %v", err)
	}
	got, err := load(ctx, f.b, s, 0)
	if err != nil || len(got) != 3 {
		t.Fatalf("load: %d records, %v", len(got), err)
	}
	for i, want := range []string{"", "", c.ID} {
		if got[i].CommitID != want {
			t.Fatalf("record %d: commit ID %q, want %q", i+1, got[i].CommitID, want)
		}
	}
	p, err := probe.New(s.Key, "Probe", probe.NewRegistry(), es.NewStore(f.b))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Refresh(ctx); err != nil {
		t.Fatalf("aggregate over commits without IDs: %v", err)
	}
}

func TestCorruptSnapshot(t *testing.T) {
	t.Parallel()
	client := connect(t)
	db := newDatabase(t, client)
	name := newCollection()
	ctx := context.Background()
	st, err := mongostore.NewSnapshotStore(client, db, name)
	if err != nil {
		t.Fatal(err)
	}
	s := stream("snap")
	if _, err := client.Database(db).Collection(name).InsertOne(ctx, bson.D{
		{Key: "_id", Value: "/" + docID(s, 7)}, {Key: "aggregate", Value: "Probe"}, {Key: "key", Value: "snap"},
		{Key: "seq", Value: int64(7)}, {Key: "version", Value: "one"}, {Key: "state", Value: "not binary"},
	}); err != nil {
		t.Fatal(err)
	}
	_, err = st.Get(ctx, s)
	if !errors.Is(err, backend.ErrInvalidSnapshot) || !strings.Contains(err.Error(), s.String()) {
		t.Fatalf("Get of a damaged snapshot: got %v, want ErrInvalidSnapshot naming the stream", err)
	}
	// A newer Put replaces it (and removes the damaged one).
	if err := st.Put(ctx, backend.Snapshot{Stream: s, Sequence: 8, Version: 1, State: []byte("ok")}); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Get(ctx, s); err != nil || got.Sequence != 8 {
		t.Fatalf("Get after a newer Put: %+v, %v", got, err)
	}
	if n, _ := client.Database(db).Collection(name).CountDocuments(ctx, bson.D{}); n != 1 {
		t.Fatalf("%d snapshot documents, want 1", n)
	}
	// Snapshots whose sequence is not one a Put would store, or does not
	// match their _id, are refused too.
	for i, c := range []struct {
		idSeq, seq int64
	}{{0, 0}, {8, 9}, {-1, -1}} {
		other := stream(fmt.Sprint("snap-bad-seq-", i))
		if _, err := client.Database(db).Collection(name).InsertOne(ctx, bson.D{
			{Key: "_id", Value: "/" + docID(other, max(c.idSeq, 0))}, {Key: "aggregate", Value: "Probe"}, {Key: "key", Value: other.Key},
			{Key: "seq", Value: c.seq}, {Key: "version", Value: int64(1)}, {Key: "state", Value: []byte("x")},
			{Key: "time", Value: bson.NewDateTimeFromTime(time.Now())}, {Key: "ns", Value: int32(0)},
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Get(ctx, other); !errors.Is(err, backend.ErrInvalidSnapshot) {
			t.Fatalf("snapshot document %d: got %v, want ErrInvalidSnapshot", i, err)
		}
	}
	if _, err := st.Get(ctx, backend.StreamID{AggregateType: "Probe"}); !errors.Is(err, backend.ErrInvalidStream) {
		t.Fatalf("Get of an invalid stream: %v", err)
	}
}

// Snapshots and commits of the same stream can share a collection: their
// _ids never collide, neither side's range queries see the other, and no
// two documents ever share the key of the unique index on (aggregate, key,
// first). FerretDB does not treat a missing field as null in a unique
// index, as real MongoDB does, so the test checks the documents themselves
// after every write the stores send, including between a Put's insert and
// its deletion of the older snapshot.
func TestSnapshotsShareTheEventsCollection(t *testing.T) {
	t.Parallel()
	setup := connect(t)
	db := newDatabase(t, setup)
	name := newCollection()
	client, watch := watchUniqueIndex(t, db, name)
	ctx := context.Background()
	b, err := mongostore.NewBackend(ctx, client, db, name)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	st, err := mongostore.NewSnapshotStore(client, db, name)
	if err != nil {
		t.Fatal(err)
	}
	s, other := stream("shared"), stream("shared-too")
	// A snapshot written by an earlier version of this package: no first.
	if _, err := setup.Database(db).Collection(name).InsertOne(ctx, bson.D{
		{Key: "_id", Value: "/" + docID(other, 1)}, {Key: "aggregate", Value: other.AggregateType}, {Key: "key", Value: other.Key},
		{Key: "seq", Value: int64(1)}, {Key: "version", Value: int64(1)}, {Key: "state", Value: []byte("old")},
		{Key: "time", Value: bson.NewDateTimeFromTime(time.Now())}, {Key: "ns", Value: int32(0)},
	}); err != nil {
		t.Fatal(err)
	}
	for seq := int64(1); seq <= 4; seq++ {
		for _, x := range []backend.StreamID{s, other} {
			if err := b.Append(ctx, commitOf(x, seq-1, 1)); err != nil {
				t.Fatal(err)
			}
			if x == other && seq == 1 {
				continue // keep the old snapshot beside the next one
			}
			// A snapshot at every commit's last sequence: the _id a commit has.
			if err := st.Put(ctx, backend.Snapshot{Stream: x, Sequence: seq, Version: 1, State: []byte("state")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, x := range []backend.StreamID{s, other} {
		got, err := load(ctx, b, x, 0)
		if err != nil || len(got) != 4 {
			t.Fatalf("load of %s beside snapshots: %d records, %v", x, len(got), err)
		}
		for i, r := range got {
			if r.Sequence != int64(i+1) {
				t.Fatalf("record %d has sequence %d", i+1, r.Sequence)
			}
		}
		if got, err := st.Get(ctx, x); err != nil || got.Sequence != 4 {
			t.Fatalf("snapshot beside the events: %+v, %v", got, err)
		}
	}
	if err := st.Delete(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := b.Append(ctx, commitOf(s, 4, 1)); err != nil {
		t.Fatalf("append after deleting the snapshots: %v", err)
	}
	found, checks := watch.violations()
	if checks < 16 {
		t.Fatalf("only %d checks ran", checks)
	}
	if len(found) > 0 {
		t.Fatalf("documents real MongoDB's unique index on (aggregate, key, first) would refuse:\n%s", strings.Join(found, "\n"))
	}
}
