package mongo_test

import (
	"context"
	"maps"
	"testing"

	es "github.com/aggregatekit/eventsourcing"
	esmongo "github.com/aggregatekit/eventsourcing/stores/mongo"
	"github.com/aggregatekit/eventsourcing/storetest"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// TestRoundTrips pins the round trips per operation that the package
// documentation states, by counting the commands the driver sends.
func TestRoundTrips(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	counter := &commandCounter{counts: map[string]int{}}
	client := connect(t, options.Client().SetMonitor(counter.monitor()))
	counter.db = newDatabase(t, client)
	name := newCollection()
	check := func(what string, want map[string]int) {
		t.Helper()
		if got := counter.take(); !maps.Equal(got, want) {
			t.Errorf("%s: commands %v, want %v", what, got, want)
		}
	}

	b, err := esmongo.NewBackend(ctx, client, counter.db, name, esmongo.WithBatchSize(2))
	if err != nil {
		t.Fatal(err)
	}
	check("NewBackend on a new collection", map[string]int{"listIndexes": 1, "createIndexes": 1})
	if _, err := esmongo.NewBackend(ctx, client, counter.db, name); err != nil {
		t.Fatal(err)
	}
	check("NewBackend with the index in place", map[string]int{"listIndexes": 1})

	s := stream("rt")
	if err := b.Append(ctx, s, 0, recs(s, 1, 3)); err != nil {
		t.Fatal(err)
	}
	check("Append to a new stream", map[string]int{"insert": 1})
	if err := b.Append(ctx, s, 3, recs(s, 4, 1)); err != nil {
		t.Fatal(err)
	}
	check("Append to an existing stream", map[string]int{"find": 1, "insert": 1})
	_ = b.Append(ctx, s, 3, recs(s, 4, 1))
	check("Append losing to a commit at the same head", map[string]int{"find": 1, "insert": 1})
	_ = b.Append(ctx, s, 9, recs(s, 10, 1))
	check("Append ahead of the head", map[string]int{"find": 1})
	_ = b.Append(ctx, s, 0, recs(s, 1, 1))
	check("Append of a new stream that exists", map[string]int{"insert": 1})

	for i := int64(4); i < 8; i++ {
		if err := b.Append(ctx, s, i, recs(s, i+1, 1)); err != nil {
			t.Fatal(err)
		}
	}
	counter.take()
	if got, err := load(ctx, b, s, 0); err != nil || len(got) != 8 {
		t.Fatalf("load: %d, %v", len(got), err)
	}
	// 5 documents in batches of 2: find returns 2, getMore 2, getMore 1; a
	// server may need one more, empty, getMore to report the end (FerretDB
	// does).
	if got := counter.take(); got["find"] != 1 || got["getMore"] < 2 || got["getMore"] > 3 || len(got) != 2 {
		t.Errorf("Load of 5 commit documents, batch size 2: commands %v, want 1 find and 2 or 3 getMore", got)
	}
	if got, err := load(ctx, b, s, 8); err != nil || len(got) != 0 {
		t.Fatalf("load at the head: %d, %v", len(got), err)
	}
	check("Load at the head", map[string]int{"find": 1})

	// Commands through the EventStore adapter, with the default batch size.
	d, err := esmongo.NewBackend(ctx, client, counter.db, name)
	if err != nil {
		t.Fatal(err)
	}
	counter.take()
	store := es.NewStore(d)
	reg := storetest.NewRegistry()
	p, err := storetest.NewProbe("fresh", "", reg, store)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Handle(ctx, storetest.Add{Batch: "a", Size: 2}); err != nil {
		t.Fatal(err)
	}
	check("Handle on a fresh aggregate", map[string]int{"find": 1, "insert": 1})
	if err := p.Handle(ctx, storetest.Add{Batch: "b", Size: 2}); err != nil {
		t.Fatal(err)
	}
	check("Handle on a loaded aggregate", map[string]int{"find": 2, "insert": 1})
	q, _ := storetest.NewProbe("fresh", "", reg, store)
	if err := q.Handle(ctx, storetest.Add{Batch: "c", Size: 1}); err != nil {
		t.Fatal(err)
	}
	check("Handle on a new instance of an existing aggregate", map[string]int{"find": 2, "insert": 1})

	// Snapshots.
	st, err := esmongo.NewSnapshotStore(client, counter.db, newCollection())
	if err != nil {
		t.Fatal(err)
	}
	check("NewSnapshotStore", map[string]int{})
	snap := func(seq int64) es.Snapshot {
		return es.Snapshot{Stream: s, Sequence: seq, Version: 1, State: []byte("x")}
	}
	if err := st.Put(ctx, snap(5)); err != nil {
		t.Fatal(err)
	}
	check("Put of a first snapshot", map[string]int{"find": 1, "update": 1, "delete": 1})
	if err := st.Put(ctx, snap(3)); err != nil {
		t.Fatal(err)
	}
	check("Put of an older snapshot", map[string]int{"find": 1})
	if _, err := st.Get(ctx, s); err != nil {
		t.Fatal(err)
	}
	check("Get", map[string]int{"find": 1})
	if err := st.Delete(ctx, s); err != nil {
		t.Fatal(err)
	}
	check("Delete", map[string]int{"delete": 1})
}
