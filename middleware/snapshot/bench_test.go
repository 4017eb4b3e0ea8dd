package snapshot_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/middleware/snapshot"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

// BenchmarkCommand measures one command on a fresh instance (load, handle,
// commit) of a Counter whose stream already holds 100 or 100,000 events, on
// the memory store, with snapshots every 100 events and without (the
// baseline). With snapshots both cases load at most 100 events after the
// latest snapshot, so they should cost about the same; without, the cost
// grows with the history.
//
// Each command adds an event. With snapshots the tail after the latest
// snapshot cycles through the same 0..99 lengths in both cases, so the
// stream is never rebuilt; without, the stream is rebuilt (timer stopped)
// once it has grown by a tenth, so the history stays within 10% of its
// nominal length.
func BenchmarkCommand(b *testing.B) {
	for _, snaps := range []bool{true, false} {
		for _, events := range []int{100, 100_000} {
			b.Run(fmt.Sprintf("snapshots=%v/events=%d", snaps, events), func(b *testing.B) {
				benchCommand(b, events, snaps)
			})
		}
	}
}

func benchCommand(b *testing.B, events int, snaps bool) {
	ctx := context.Background()
	store := es.NewStore(memory.NewBackend())
	if snaps {
		mw, err := snapshot.New(memory.NewSnapshotStore(), snapshot.EveryN(100))
		if err != nil {
			b.Fatal(err)
		}
		store = es.Wrap(store, mw)
	}
	defer store.Close()
	reg := es.NewStandardEventRegistry("bench")
	if err := reg.RegisterEvent(Incremented{}); err != nil {
		b.Fatal(err)
	}
	history := make([]es.Event, events)
	for i := range history {
		history[i] = Incremented{By: "seed"}
	}
	generation := 0
	var key string
	populate := func() {
		generation++
		key = fmt.Sprintf("counter-%d", generation)
		c, err := newCounter(key, reg, store)
		if err != nil {
			b.Fatal(err)
		}
		// One commit of all the history: with snapshots on, it crosses a
		// multiple of 100 and leaves a snapshot at the head.
		if err := c.Run(ctx, func(context.Context) ([]es.Event, error) { return history, nil }); err != nil {
			b.Fatal(err)
		}
	}
	populate()
	rebuildAfter := max(1, events/10)
	cmd := Increment{By: "bench"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !snaps && i > 0 && i%rebuildAfter == 0 {
			b.StopTimer()
			populate()
			b.StartTimer()
		}
		c, err := newCounter(key, reg, store)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Handle(ctx, cmd); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSnapshotScaling runs commands alternately on a Counter with 100
// events and one with 100,000 (snapshots every 100, memory store), so that
// both see the same machine load, and reports the median time of each and
// their ratio (large/small; the target is at most 1.5).
func BenchmarkSnapshotScaling(b *testing.B) {
	ctx := context.Background()
	mw, err := snapshot.New(memory.NewSnapshotStore(), snapshot.EveryN(100))
	if err != nil {
		b.Fatal(err)
	}
	store := es.Wrap(es.NewStore(memory.NewBackend()), mw)
	defer store.Close()
	reg := es.NewStandardEventRegistry("bench")
	if err := reg.RegisterEvent(Incremented{}); err != nil {
		b.Fatal(err)
	}
	keys := []string{"small", "large"}
	for i, n := range []int{100, 100_000} {
		c, err := newCounter(keys[i], reg, store)
		if err != nil {
			b.Fatal(err)
		}
		history := slices.Repeat([]es.Event{Incremented{By: "seed"}}, n)
		if err := c.Run(ctx, func(context.Context) ([]es.Event, error) { return history, nil }); err != nil {
			b.Fatal(err)
		}
	}
	var times [2][]time.Duration
	cmd := Increment{By: "bench"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k, key := range keys {
			start := time.Now()
			c, err := newCounter(key, reg, store)
			if err != nil {
				b.Fatal(err)
			}
			if err := c.Handle(ctx, cmd); err != nil {
				b.Fatal(err)
			}
			times[k] = append(times[k], time.Since(start))
		}
	}
	b.StopTimer()
	median := func(d []time.Duration) float64 {
		slices.Sort(d)
		return float64(d[len(d)/2])
	}
	small, large := median(times[0]), median(times[1])
	b.ReportMetric(small, "ns/small-cmd")
	b.ReportMetric(large, "ns/large-cmd")
	b.ReportMetric(large/small, "large/small")
}
