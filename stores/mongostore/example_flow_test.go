package mongostore_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/middleware/snapshot"
	"github.com/aggregatekit/eventsourcing/stores/mongostore"
)

// TestExampleFlow runs what the examples show against the test server:
// an event store over a Backend with snapshots in their own collection,
// commands with command IDs (a repeat applies once), a fresh instance
// restored from its snapshot, and a relay's pass over the outbox.
func TestExampleFlow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client := connect(t)
	db := newDatabase(t, client)
	b, err := mongostore.NewBackend(ctx, client, db, "events")
	if err != nil {
		t.Fatal(err)
	}
	snapshots, err := mongostore.NewSnapshotStore(client, db, "snapshots")
	if err != nil {
		t.Fatal(err)
	}
	mw, err := snapshot.New(snapshots, snapshot.EveryN(2))
	if err != nil {
		t.Fatal(err)
	}
	store := es.Wrap(es.NewStore(b), mw)
	defer store.Close()
	registry := es.NewStandardEventRegistry("shop")
	if err := registry.RegisterEvent(Incremented{}); err != nil {
		t.Fatal(err)
	}
	counter := func() *Counter {
		c := &Counter{}
		c.Initialize("visits", registry, store, func() any { return c })
		if err := c.AutomaticWireup(c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := counter()
	var ids []string
	for i := 0; i < 5; i++ {
		id := fmt.Sprintf("visit-%04d", i)
		ids = append(ids, id)
		if err := c.Handle(es.WithCommandID(ctx, id), Increment{By: 2}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Handle(es.WithCommandID(ctx, ids[4]), Increment{By: 2}); err != nil {
		t.Fatalf("repeated command: %v", err)
	}
	if c.Count != 10 {
		t.Fatalf("count %d after 5 commands and a repeat, want 10", c.Count)
	}
	if snap, err := snapshots.Get(ctx, c.StreamID()); err != nil || snap.Sequence != 4 {
		t.Fatalf("snapshot: %+v, %v", snap, err)
	}
	fresh := counter()
	if err := fresh.Refresh(ctx); err != nil || fresh.Count != 10 || fresh.SequenceNumber() != 5 {
		t.Fatalf("fresh instance: count %d at %d, %v", fresh.Count, fresh.SequenceNumber(), err)
	}

	// The relay of ExampleBackend_Pending: every commit once, in order,
	// under its command ID.
	var got []string
	var done []backend.CommitRef
	for cm, err := range b.Pending(ctx, 100) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, cm.ID)
		done = append(done, cm.Ref())
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("pending commits %v, want %v", got, ids)
	}
	if err := b.MarkPublished(ctx, done); err != nil {
		t.Fatal(err)
	}
	for range b.Pending(ctx, 100) {
		t.Fatal("a commit is still pending after MarkPublished")
	}
}
