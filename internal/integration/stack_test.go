package integration_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/internal/probe"
	"github.com/aggregatekit/eventsourcing/internal/testkit"
	"github.com/aggregatekit/eventsourcing/middleware/logging"
	"github.com/aggregatekit/eventsourcing/middleware/publish"
	"github.com/aggregatekit/eventsourcing/middleware/snapshot"
	"github.com/aggregatekit/eventsourcing/stores/memory"
	"github.com/aggregatekit/eventsourcing/storetest"
)

// tracedSnapshots records Get and Put calls of a snapshot store.
type tracedSnapshots struct {
	es.SnapshotStore
	tr *testkit.Trace
}

func (s tracedSnapshots) Get(ctx context.Context, id es.StreamID) (es.Snapshot, error) {
	snap, err := s.SnapshotStore.Get(ctx, id)
	s.tr.Add("snapshot get %d", snap.Sequence)
	return snap, err
}

func (s tracedSnapshots) Put(ctx context.Context, snap es.Snapshot) error {
	s.tr.Add("snapshot put %d", snap.Sequence)
	return s.SnapshotStore.Put(ctx, snap)
}

// tracedStore records calls reaching the innermost store.
type tracedStore struct {
	es.EventStore
	tr *testkit.Trace
}

func (s tracedStore) Refresh(ctx context.Context, l es.Loader) error {
	s.tr.Add("store refresh after %d", l.Sequence())
	return s.EventStore.Refresh(ctx, l)
}

func (s tracedStore) Commit(ctx context.Context, c es.Commit) error {
	s.tr.Add("store commit %d", len(c.Records))
	return s.EventStore.Commit(ctx, c)
}

func (s tracedStore) Close() error {
	s.tr.Add("store close")
	return s.EventStore.Close()
}

// stack wraps store in logging(snapshot(publish(store))).
func stack(t *testing.T, store es.EventStore, snaps es.SnapshotStore, logger *slog.Logger, pub publish.Publisher) es.EventStore {
	t.Helper()
	logMW, err := logging.NewSlog(logger)
	if err != nil {
		t.Fatal(err)
	}
	snapMW, err := snapshot.New(snaps, snapshot.EveryN(2), snapshot.WithErrorHandler(func(_ context.Context, err error) {
		// storetest's recording loader refuses snapshots on purpose; any
		// other problem is a failure.
		if !errors.Is(err, es.ErrInvalidSnapshot) {
			t.Errorf("snapshot problem: %v", err)
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	pubMW, err := publish.New(pub, publish.WithErrorHandler(func(_ context.Context, err *publish.Error) {
		t.Errorf("publish problem: %v", err)
	}))
	if err != nil {
		t.Fatal(err)
	}
	return es.Wrap(store, logMW, snapMW, pubMW)
}

func TestStackOrder(t *testing.T) {
	ctx := context.Background()
	var tr testkit.Trace
	bus := publish.NewBus()
	bus.SubscribeAll(func(_ context.Context, m publish.Message) error {
		tr.Add("publish %d", m.Record.Sequence)
		return nil
	})
	store := stack(t, tracedStore{es.NewStore(memory.NewBackend()), &tr}, tracedSnapshots{memory.NewSnapshotStore(), &tr}, tr.Logger(), bus)
	p, err := probe.New("k", "", probe.NewRegistry(), store)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Handle(ctx, probe.Add{Batch: "a", Size: 3}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"snapshot get 0", "store refresh after 0", "log eventsourcing refresh",
		"store commit 3", "publish 1", "publish 2", "publish 3", "snapshot put 3", "log eventsourcing commit",
	}
	if got := tr.Take(); !slices.Equal(got, want) {
		t.Fatalf("first command:\n got  %q\n want %q", got, want)
	}
	// A new instance restores the snapshot and loads only what follows it
	// (from the snapshot's own last event, which proves the stream reaches it).
	q, _ := probe.New("k", "", probe.NewRegistry(), store)
	if err := q.Handle(ctx, probe.Add{Batch: "b", Size: 1}); err != nil {
		t.Fatal(err)
	}
	want = []string{
		"snapshot get 3", "store refresh after 2", "log eventsourcing refresh",
		"store commit 1", "publish 4", "snapshot put 4", "log eventsourcing commit",
	}
	if got := tr.Take(); !slices.Equal(got, want) {
		t.Fatalf("second command:\n got  %q\n want %q", got, want)
	}
	if q.Count != 4 || q.SequenceNumber() != 4 {
		t.Fatalf("restored instance: count %d sequence %d", q.Count, q.SequenceNumber())
	}
	// Close goes down through every layer to the store.
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	if got := tr.Take(); !slices.Equal(got, []string{"store close"}) {
		t.Fatalf("close: %q", got)
	}
}

// published checks that the bus saw exactly the stored events.
type published struct {
	mu  sync.Mutex
	ids map[es.StreamID][]int64
}

func (p *published) Publish(_ context.Context, msgs []publish.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range msgs {
		p.ids[m.Record.Stream] = append(p.ids[m.Record.Stream], m.Record.Sequence)
	}
	return nil
}

func (p *published) check(t *testing.T) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for stream, seqs := range p.ids {
		for i, s := range seqs {
			if s != int64(i+1) {
				t.Fatalf("stream %s: published sequences %v are not 1..n in order", stream, seqs)
			}
		}
	}
}

func quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestStackConformance(t *testing.T) {
	storetest.RunEventStore(t, func(t *testing.T) es.EventStore {
		pub := &published{ids: map[es.StreamID][]int64{}}
		t.Cleanup(func() { pub.check(t) })
		return stack(t, es.NewStore(memory.NewBackend()), memory.NewSnapshotStore(), quiet(), pub)
	})
}

func TestStackStress(t *testing.T) {
	pub := &published{ids: map[es.StreamID][]int64{}}
	store := stack(t, es.NewStore(memory.NewBackend()), memory.NewSnapshotStore(), quiet(), pub)
	res := storetest.RunStress(t, store, storetest.StressConfig{})
	pub.check(t)
	var n int64
	for _, seqs := range pub.ids {
		n += int64(len(seqs))
	}
	if n != res.Events {
		t.Fatalf("published %d events, stored %d", n, res.Events)
	}
}
