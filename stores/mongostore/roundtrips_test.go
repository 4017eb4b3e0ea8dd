package mongostore_test

import (
	"context"
	"errors"
	"maps"
	"testing"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/internal/probe"
	"github.com/aggregatekit/eventsourcing/stores/mongostore"
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

	b, err := mongostore.NewBackend(ctx, client, counter.db, name, mongostore.WithBatchSize(2))
	if err != nil {
		t.Fatal(err)
	}
	check("NewBackend on a new collection", map[string]int{"listIndexes": 1, "createIndexes": 1})
	if _, err := mongostore.NewBackend(ctx, client, counter.db, name); err != nil {
		t.Fatal(err)
	}
	check("NewBackend with the index in place", map[string]int{"listIndexes": 1})

	s := stream("rt")
	if err := b.Append(ctx, commitOf(s, 0, 3)); err != nil {
		t.Fatal(err)
	}
	check("Append to a new stream", map[string]int{"insert": 1})
	if err := b.Append(ctx, commitOf(s, 3, 1)); err != nil {
		t.Fatal(err)
	}
	check("Append at the head this Backend wrote", map[string]int{"insert": 1})
	_ = b.Append(ctx, commitOf(s, 3, 1))
	check("Append losing to a commit at an older boundary", map[string]int{"find": 1, "insert": 1})
	_ = b.Append(ctx, commitOf(s, 9, 1))
	check("Append ahead of the head", map[string]int{"find": 1})
	_ = b.Append(ctx, commitOf(s, 2, 1))
	check("Append inside a commit", map[string]int{"find": 1})
	_ = b.Append(ctx, commitOf(s, 0, 1))
	check("Append of a new stream that exists", map[string]int{"insert": 1})

	// A second Backend has not seen the stream: the head check runs once,
	// then its own append is known.
	b2, err := mongostore.NewBackend(ctx, client, counter.db, name)
	if err != nil {
		t.Fatal(err)
	}
	counter.take()
	if err := b2.Append(ctx, commitOf(s, 4, 1)); err != nil {
		t.Fatal(err)
	}
	check("Append at a boundary this Backend has not seen", map[string]int{"find": 1, "insert": 1})
	if err := b2.Append(ctx, commitOf(s, 5, 1)); err != nil {
		t.Fatal(err)
	}
	check("Append at the head this Backend wrote, second time", map[string]int{"insert": 1})
	// b remembers 4, now stale: the unique index refuses the insert.
	if err := b.Append(ctx, commitOf(s, 4, 1)); !errors.Is(err, backend.ErrConcurrency) {
		t.Fatalf("append at a stale known boundary: got %v, want ErrConcurrency", err)
	}
	check("Append losing at a stale known boundary", map[string]int{"insert": 1})

	// Without the cache every append at expected > 0 checks the head.
	off, err := mongostore.NewBackend(ctx, client, counter.db, name, mongostore.WithBoundaryCache(0))
	if err != nil {
		t.Fatal(err)
	}
	counter.take()
	if err := off.Append(ctx, commitOf(s, 6, 1)); err != nil {
		t.Fatal(err)
	}
	check("Append without the cache", map[string]int{"find": 1, "insert": 1})
	if _, err := load(ctx, off, s, 0); err != nil {
		t.Fatal(err)
	}
	counter.take()
	if err := off.Append(ctx, commitOf(s, 7, 1)); err != nil {
		t.Fatal(err)
	}
	check("Append after a load, without the cache", map[string]int{"find": 1, "insert": 1})

	// A Backend that loaded the stream knows its head.
	b3, err := mongostore.NewBackend(ctx, client, counter.db, name, mongostore.WithBatchSize(2))
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
	if err := b3.Append(ctx, commitOf(s, 8, 1)); err != nil {
		t.Fatal(err)
	}
	check("Append at the head this Backend loaded", map[string]int{"insert": 1})
	// A load starting inside a commit remembers the boundaries it reads too.
	b4, err := mongostore.NewBackend(ctx, client, counter.db, name)
	if err != nil {
		t.Fatal(err)
	}
	counter.take()
	if got, err := load(ctx, b4, s, 2); err != nil || len(got) != 7 {
		t.Fatalf("load after 2: %d, %v", len(got), err)
	}
	if err := b4.Append(ctx, commitOf(s, 9, 1)); err != nil {
		t.Fatal(err)
	}
	check("Load from inside a commit, then Append at the head", map[string]int{"find": 1, "insert": 1})

	// Commands through the EventStore adapter, with the default batch size.
	for _, c := range []struct {
		name     string
		opts     []mongostore.Option
		existing map[string]int // Handle on an existing aggregate
	}{
		{"default", nil, map[string]int{"find": 1, "insert": 1}},
		{"no cache", []mongostore.Option{mongostore.WithBoundaryCache(0)}, map[string]int{"find": 2, "insert": 1}},
	} {
		d, err := mongostore.NewBackend(ctx, client, counter.db, name, c.opts...)
		if err != nil {
			t.Fatal(err)
		}
		counter.take()
		store := es.NewStore(d)
		reg := probe.NewRegistry()
		key := "fresh-" + c.name
		p, err := probe.New(key, "", reg, store)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Handle(ctx, probe.Add{Batch: "a", Size: 2}); err != nil {
			t.Fatal(err)
		}
		check(c.name+": Handle on a fresh aggregate", map[string]int{"find": 1, "insert": 1})
		if err := p.Handle(ctx, probe.Add{Batch: "b", Size: 2}); err != nil {
			t.Fatal(err)
		}
		check(c.name+": Handle on a loaded aggregate", c.existing)
		q, _ := probe.New(key, "", reg, store)
		if err := q.Handle(ctx, probe.Add{Batch: "c", Size: 1}); err != nil {
			t.Fatal(err)
		}
		check(c.name+": Handle on a new instance of an existing aggregate", c.existing)
		// A Backend that has never seen the stream learns its head from the
		// load.
		e, err := mongostore.NewBackend(ctx, client, counter.db, name, c.opts...)
		if err != nil {
			t.Fatal(err)
		}
		counter.take()
		r, _ := probe.New(key, "", reg, es.NewStore(e))
		if err := r.Handle(ctx, probe.Add{Batch: "d", Size: 1}); err != nil {
			t.Fatal(err)
		}
		check(c.name+": Handle through a Backend that never saw the aggregate", c.existing)
	}

	// Snapshots.
	st, err := mongostore.NewSnapshotStore(client, counter.db, newCollection())
	if err != nil {
		t.Fatal(err)
	}
	check("NewSnapshotStore", map[string]int{})
	snap := func(seq int64) backend.Snapshot {
		return backend.Snapshot{Stream: s, Sequence: seq, Version: 1, State: []byte("x")}
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

	// The outbox, on a collection of its own.
	ob, err := mongostore.NewBackend(ctx, client, counter.db, newCollection())
	if err != nil {
		t.Fatal(err)
	}
	counter.take()
	pendingAll := func(limit int) []backend.Commit {
		t.Helper()
		var out []backend.Commit
		for c, err := range ob.Pending(ctx, limit) {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, c)
		}
		return out
	}
	if got := pendingAll(0); len(got) != 0 {
		t.Fatalf("pending on an empty collection: %d", len(got))
	}
	check("Pending of nothing", map[string]int{"find": 1})
	x, y := stream("ox"), stream("oy")
	cx1, cy1 := commitOf(x, 0, 2), commitOf(y, 0, 1)
	for _, c := range []backend.Commit{cx1, cy1} {
		if err := ob.Append(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	check("Append with the pending marker", map[string]int{"insert": 2})
	if got := pendingAll(0); len(got) != 2 {
		t.Fatalf("pending: %d commits, want 2", len(got))
	}
	check("Pending of the first commits of two streams", map[string]int{"find": 1})
	if err := ob.MarkPublished(ctx, []backend.CommitRef{cx1.Ref(), cy1.Ref()}); err != nil {
		t.Fatal(err)
	}
	check("MarkPublished", map[string]int{"update": 1})
	cx2, cy2 := commitOf(x, 2, 1), commitOf(y, 1, 1)
	for _, c := range []backend.Commit{cx2, cy2, commitOf(x, 3, 1)} {
		if err := ob.Append(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	counter.take()
	if got := pendingAll(0); len(got) != 3 {
		t.Fatalf("pending: %d commits, want 3", len(got))
	}
	check("Pending of later commits (their predecessors checked)", map[string]int{"find": 2})
	if err := ob.MarkPublished(ctx, nil); err != nil {
		t.Fatal(err)
	}
	check("MarkPublished of nothing", map[string]int{})
}
