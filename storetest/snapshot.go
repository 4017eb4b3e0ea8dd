package storetest

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
)

// RunSnapshotStore runs the SnapshotStore conformance suite.
func RunSnapshotStore(t *testing.T, newStore func(t *testing.T) es.SnapshotStore) {
	t.Helper()
	ctx := context.Background()
	snap := func(s es.StreamID, seq int64, version int, state string) es.Snapshot {
		return es.Snapshot{Stream: s, Sequence: seq, Version: version, State: []byte(state),
			Time: time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC)}
	}
	get := func(t *testing.T, st es.SnapshotStore, s es.StreamID) es.Snapshot {
		t.Helper()
		got, err := st.Get(ctx, s)
		if err != nil {
			t.Fatalf("Get(%s): %v", s, err)
		}
		return got
	}

	t.Run("Missing", func(t *testing.T) {
		st := newStore(t)
		if _, err := st.Get(ctx, uniqueStream(t, "Probe")); !errors.Is(err, es.ErrSnapshotNotFound) {
			t.Fatalf("got %v, want ErrSnapshotNotFound", err)
		}
	})

	t.Run("RoundTrip", func(t *testing.T) {
		st := newStore(t)
		s := uniqueStream(t, "Probe")
		state := make([]byte, 64<<10)
		for i := range state {
			state[i] = byte(i * 7)
		}
		want := es.Snapshot{Stream: s, Sequence: 1<<53 + 1, Version: 3, State: state, Time: time.Date(2026, 1, 1, 0, 0, 0, 1, time.UTC)}
		if err := st.Put(ctx, want); err != nil {
			t.Fatalf("Put: %v", err)
		}
		got := get(t, st, s)
		if got.Stream != want.Stream || got.Sequence != want.Sequence || got.Version != want.Version || !bytes.Equal(got.State, want.State) {
			t.Fatalf("round trip: got %v/%d/v%d/%d bytes, want %v/%d/v%d/%d bytes",
				got.Stream, got.Sequence, got.Version, len(got.State), want.Stream, want.Sequence, want.Version, len(want.State))
		}
		if !got.Time.Equal(want.Time) {
			t.Fatalf("time: got %v want %v", got.Time, want.Time)
		}
	})

	t.Run("NewerWins", func(t *testing.T) {
		st := newStore(t)
		s := uniqueStream(t, "Probe")
		steps := []struct {
			put  es.Snapshot
			want int64
			ver  int
		}{
			{snap(s, 10, 1, "ten"), 10, 1},
			{snap(s, 5, 1, "five"), 10, 1},    // older: ignored
			{snap(s, 10, 2, "ten-v2"), 10, 2}, // same sequence: replaces (new schema)
			{snap(s, 20, 2, "twenty"), 20, 2},
			{snap(s, 19, 9, "nineteen"), 20, 2},
		}
		for i, step := range steps {
			if err := st.Put(ctx, step.put); err != nil {
				t.Fatalf("step %d Put: %v", i, err)
			}
			if got := get(t, st, s); got.Sequence != step.want || got.Version != step.ver {
				t.Fatalf("step %d: holds sequence %d version %d, want %d version %d", i, got.Sequence, got.Version, step.want, step.ver)
			}
		}
	})

	t.Run("Delete", func(t *testing.T) {
		st := newStore(t)
		s := uniqueStream(t, "Probe")
		if err := st.Delete(ctx, s); err != nil {
			t.Fatalf("Delete of a missing snapshot: %v", err)
		}
		if err := st.Put(ctx, snap(s, 3, 1, "x")); err != nil {
			t.Fatal(err)
		}
		if err := st.Delete(ctx, s); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Get(ctx, s); !errors.Is(err, es.ErrSnapshotNotFound) {
			t.Fatalf("after Delete: got %v, want ErrSnapshotNotFound", err)
		}
		if err := st.Put(ctx, snap(s, 1, 1, "again")); err != nil {
			t.Fatal(err)
		}
		if got := get(t, st, s); got.Sequence != 1 {
			t.Fatalf("Put after Delete: sequence %d", got.Sequence)
		}
	})

	t.Run("StreamsAreSeparate", func(t *testing.T) {
		st := newStore(t)
		a := uniqueStream(t, "Alpha")
		b := es.StreamID{AggregateType: "Beta", Key: a.Key}
		if err := st.Put(ctx, snap(a, 7, 1, "alpha")); err != nil {
			t.Fatal(err)
		}
		if err := st.Put(ctx, snap(b, 3, 1, "beta")); err != nil {
			t.Fatal(err)
		}
		if got := get(t, st, a); string(got.State) != "alpha" || got.Sequence != 7 {
			t.Fatalf("alpha: %q at %d", got.State, got.Sequence)
		}
		if got := get(t, st, b); string(got.State) != "beta" || got.Sequence != 3 {
			t.Fatalf("beta: %q at %d", got.State, got.Sequence)
		}
	})

	t.Run("RacingPuts", func(t *testing.T) {
		st := newStore(t)
		s := uniqueStream(t, "Probe")
		const writers, each = 16, 10
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					seq := int64(rand.IntN(1000) + 1)
					if err := st.Put(ctx, snap(s, seq, 1, "s")); err != nil {
						errs <- err
					}
				}
			}()
		}
		// One writer holds the highest sequence; it must survive the race.
		if err := st.Put(ctx, snap(s, 5000, 1, "top")); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("Put: %v", err)
		}
		if got := get(t, st, s); got.Sequence != 5000 || string(got.State) != "top" {
			t.Fatalf("an older snapshot replaced the newest: holds %d %q", got.Sequence, got.State)
		}
	})
}
