package mongostore_test

import (
	"context"
	"errors"
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
	check("Append at the head this Backend wrote", map[string]int{"insert": 1})
	_ = b.Append(ctx, s, 3, recs(s, 4, 1))
	check("Append losing to a commit at an older boundary", map[string]int{"find": 1, "insert": 1})
	_ = b.Append(ctx, s, 9, recs(s, 10, 1))
	check("Append ahead of the head", map[string]int{"find": 1})
	_ = b.Append(ctx, s, 2, recs(s, 3, 1))
	check("Append inside a commit", map[string]int{"find": 1})
	_ = b.Append(ctx, s, 0, recs(s, 1, 1))
	check("Append of a new stream that exists", map[string]int{"insert": 1})

	// A second Backend has not seen the stream: the head check runs once,
	// then its own append is known.
	b2, err := esmongo.NewBackend(ctx, client, counter.db, name)
	if err != nil {
		t.Fatal(err)
	}
	counter.take()
	if err := b2.Append(ctx, s, 4, recs(s, 5, 1)); err != nil {
		t.Fatal(err)
	}
	check("Append at a boundary this Backend has not seen", map[string]int{"find": 1, "insert": 1})
	if err := b2.Append(ctx, s, 5, recs(s, 6, 1)); err != nil {
		t.Fatal(err)
	}
	check("Append at the head this Backend wrote, second time", map[string]int{"insert": 1})
	// b remembers 4, now stale: the unique index refuses the insert.
	if err := b.Append(ctx, s, 4, recs(s, 5, 1)); !errors.Is(err, es.ErrConcurrency) {
		t.Fatalf("append at a stale known boundary: got %v, want ErrConcurrency", err)
	}
	check("Append losing at a stale known boundary", map[string]int{"insert": 1})

	// Without the cache every append at expected > 0 checks the head.
	off, err := esmongo.NewBackend(ctx, client, counter.db, name, esmongo.WithBoundaryCache(0))
	if err != nil {
		t.Fatal(err)
	}
	counter.take()
	if err := off.Append(ctx, s, 6, recs(s, 7, 1)); err != nil {
		t.Fatal(err)
	}
	check("Append without the cache", map[string]int{"find": 1, "insert": 1})
	if _, err := load(ctx, off, s, 0); err != nil {
		t.Fatal(err)
	}
	counter.take()
	if err := off.Append(ctx, s, 7, recs(s, 8, 1)); err != nil {
		t.Fatal(err)
	}
	check("Append after a load, without the cache", map[string]int{"find": 1, "insert": 1})

	// A Backend that loaded the stream knows its head.
	b3, err := esmongo.NewBackend(ctx, client, counter.db, name, esmongo.WithBatchSize(2))
	if err != nil {
		t.Fatal(err)
	}
	counter.take()
	if got, err := load(ctx, b3, s, 0); err != nil || len(got) != 8 {
		t.Fatalf("load: %d, %v", len(got), err)
	}
	// 6 documents (1-3, 4, 5, 6, 7, 8) in batches of 2: find returns 2,
	// then two getMores 2 each; a server may need one more, empty, getMore
	// to report the end (FerretDB does).
	if got := counter.take(); got["find"] != 1 || got["getMore"] < 2 || got["getMore"] > 3 || len(got) != 2 {
		t.Errorf("Load of 6 commit documents, batch size 2: commands %v, want 1 find and 2 or 3 getMore", got)
	}
	if got, err := load(ctx, b3, s, 8); err != nil || len(got) != 0 {
		t.Fatalf("load at the head: %d, %v", len(got), err)
	}
	check("Load at the head", map[string]int{"find": 1})
	if err := b3.Append(ctx, s, 8, recs(s, 9, 1)); err != nil {
		t.Fatal(err)
	}
	check("Append at the head this Backend loaded", map[string]int{"insert": 1})
	// A load starting inside a commit remembers the boundaries it reads too.
	b4, err := esmongo.NewBackend(ctx, client, counter.db, name)
	if err != nil {
		t.Fatal(err)
	}
	counter.take()
	if got, err := load(ctx, b4, s, 2); err != nil || len(got) != 7 {
		t.Fatalf("load after 2: %d, %v", len(got), err)
	}
	if err := b4.Append(ctx, s, 9, recs(s, 10, 1)); err != nil {
		t.Fatal(err)
	}
	check("Load from inside a commit, then Append at the head", map[string]int{"find": 1, "insert": 1})

	// Commands through the EventStore adapter, with the default batch size.
	for _, c := range []struct {
		name     string
		opts     []esmongo.Option
		existing map[string]int // Handle on an existing aggregate
	}{
		{"default", nil, map[string]int{"find": 1, "insert": 1}},
		{"no cache", []esmongo.Option{esmongo.WithBoundaryCache(0)}, map[string]int{"find": 2, "insert": 1}},
	} {
		d, err := esmongo.NewBackend(ctx, client, counter.db, name, c.opts...)
		if err != nil {
			t.Fatal(err)
		}
		counter.take()
		store := es.NewStore(d)
		reg := storetest.NewRegistry()
		key := "fresh-" + c.name
		p, err := storetest.NewProbe(key, "", reg, store)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Handle(ctx, storetest.Add{Batch: "a", Size: 2}); err != nil {
			t.Fatal(err)
		}
		check(c.name+": Handle on a fresh aggregate", map[string]int{"find": 1, "insert": 1})
		if err := p.Handle(ctx, storetest.Add{Batch: "b", Size: 2}); err != nil {
			t.Fatal(err)
		}
		check(c.name+": Handle on a loaded aggregate", c.existing)
		q, _ := storetest.NewProbe(key, "", reg, store)
		if err := q.Handle(ctx, storetest.Add{Batch: "c", Size: 1}); err != nil {
			t.Fatal(err)
		}
		check(c.name+": Handle on a new instance of an existing aggregate", c.existing)
		// A Backend that has never seen the stream learns its head from the
		// load.
		e, err := esmongo.NewBackend(ctx, client, counter.db, name, c.opts...)
		if err != nil {
			t.Fatal(err)
		}
		counter.take()
		r, _ := storetest.NewProbe(key, "", reg, es.NewStore(e))
		if err := r.Handle(ctx, storetest.Add{Batch: "d", Size: 1}); err != nil {
			t.Fatal(err)
		}
		check(c.name+": Handle through a Backend that never saw the aggregate", c.existing)
	}

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
