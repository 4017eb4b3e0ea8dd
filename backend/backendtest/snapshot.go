package backendtest

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/aggregatekit/eventsourcing/backend"
)

// RunSnapshotStore runs the SnapshotStore conformance suite. newStore is
// called once per subtest.
func RunSnapshotStore(t *testing.T, newStore func(t *testing.T) backend.SnapshotStore, opts ...Option) {
	t.Helper()
	ctx := context.Background()
	snap := func(s backend.StreamID, seq int64, version int, state string) backend.Snapshot {
		return backend.Snapshot{Stream: s, Sequence: seq, Version: version, State: []byte(state), Time: testTime}
	}
	get := func(t *testing.T, st backend.SnapshotStore, s backend.StreamID) backend.Snapshot {
		t.Helper()
		got, err := st.Get(ctx, s)
		if err != nil {
			t.Fatalf("Get(%s): %v", s, err)
		}
		return got
	}
	put := func(t *testing.T, st backend.SnapshotStore, s backend.Snapshot) {
		t.Helper()
		if err := st.Put(ctx, s); err != nil {
			t.Fatalf("Put(%s at %d): %v", s.Stream, s.Sequence, err)
		}
	}

	t.Run("Missing", func(t *testing.T) {
		st := newStore(t)
		if _, err := st.Get(ctx, uniqueStream(t, "Probe")); !errors.Is(err, backend.ErrSnapshotNotFound) {
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
		want := backend.Snapshot{Stream: s, Sequence: 1<<53 + 1, Version: 3, State: state, Time: time.Date(2026, 1, 1, 0, 0, 0, 1, time.UTC)}
		put(t, st, want)
		got := get(t, st, s)
		if got.Stream != want.Stream || got.Sequence != want.Sequence || got.Version != want.Version || !bytes.Equal(got.State, want.State) {
			t.Fatalf("round trip: got %v/%d/v%d/%d bytes, want %v/%d/v%d/%d bytes",
				got.Stream, got.Sequence, got.Version, len(got.State), want.Stream, want.Sequence, want.Version, len(want.State))
		}
		if !got.Time.Equal(want.Time) {
			t.Fatalf("time: got %v want %v", got.Time, want.Time)
		}
	})

	t.Run("Times", func(t *testing.T) {
		st := newStore(t)
		for i, ts := range []time.Time{time.Unix(0, 0), {}, time.Date(1950, 6, 1, 0, 0, 0, 5, time.UTC), backend.MaxTime} {
			s := uniqueStream(t, "Probe")
			put(t, st, backend.Snapshot{Stream: s, Sequence: 1, State: []byte("{}"), Time: ts})
			if got := get(t, st, s); !got.Time.Equal(ts) || got.Time.IsZero() != ts.IsZero() {
				t.Errorf("time %d: got %v, want %v", i, got.Time, ts)
			}
		}
	})

	t.Run("EmptyState", func(t *testing.T) {
		st := newStore(t)
		s := uniqueStream(t, "Probe")
		put(t, st, backend.Snapshot{Stream: s, Sequence: 2, Version: -1, State: nil, Time: testTime})
		if got := get(t, st, s); len(got.State) != 0 || got.Sequence != 2 || got.Version != -1 {
			t.Fatalf("got %+v", got)
		}
	})

	t.Run("InvalidRefused", func(t *testing.T) {
		st := newStore(t)
		s := uniqueStream(t, "Probe")
		for _, seq := range []int64{0, -5} {
			if err := st.Put(ctx, snap(s, seq, 1, "bad")); !errors.Is(err, backend.ErrInvalidSnapshot) {
				t.Fatalf("Put at sequence %d: got %v, want ErrInvalidSnapshot", seq, err)
			}
		}
		if err := st.Put(ctx, snap(backend.StreamID{AggregateType: "Probe"}, 1, 1, "x")); !errors.Is(err, backend.ErrInvalidStream) {
			t.Fatalf("Put with an empty key: got %v, want ErrInvalidStream", err)
		}
		if _, err := st.Get(ctx, s); !errors.Is(err, backend.ErrSnapshotNotFound) {
			t.Fatalf("after refused Puts: got %v, want ErrSnapshotNotFound", err)
		}
	})

	t.Run("NewerWins", func(t *testing.T) {
		st := newStore(t)
		s := uniqueStream(t, "Probe")
		steps := []struct {
			put  backend.Snapshot
			want int64
			ver  int
		}{
			{snap(s, 10, 1, "ten"), 10, 1},
			{snap(s, 5, 1, "five"), 10, 1},    // older: ignored
			{snap(s, 10, 2, "ten-v2"), 10, 2}, // same sequence: replaces (new schema)
			{snap(s, 20, 2, "twenty"), 20, 2},
			{snap(s, 19, 9, "nineteen"), 20, 2},
			{snap(s, 1<<62, 2, "huge"), 1 << 62, 2},
			{snap(s, 1<<62-1, 2, "huge-1"), 1 << 62, 2}, // differs from the newest only beyond 2^53
		}
		for i, step := range steps {
			put(t, st, step.put)
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
		put(t, st, snap(s, 3, 1, "x"))
		if err := st.Delete(ctx, s); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Get(ctx, s); !errors.Is(err, backend.ErrSnapshotNotFound) {
			t.Fatalf("after Delete: got %v, want ErrSnapshotNotFound", err)
		}
		put(t, st, snap(s, 1, 1, "again"))
		if got := get(t, st, s); got.Sequence != 1 {
			t.Fatalf("Put after Delete: sequence %d", got.Sequence)
		}
	})

	t.Run("StreamsAreSeparate", func(t *testing.T) {
		st := newStore(t)
		a := uniqueStream(t, "Alpha")
		b := backend.StreamID{AggregateType: "Beta", Key: a.Key}
		c := backend.StreamID{AggregateType: "Alpha", Key: a.Key + "/0000000000000000009"}
		put(t, st, snap(a, 7, 1, "alpha"))
		put(t, st, snap(b, 3, 1, "beta"))
		put(t, st, snap(c, 9, 1, "gamma"))
		for _, w := range []struct {
			s     backend.StreamID
			state string
			seq   int64
		}{{a, "alpha", 7}, {b, "beta", 3}, {c, "gamma", 9}} {
			if got := get(t, st, w.s); string(got.State) != w.state || got.Sequence != w.seq || got.Stream != w.s {
				t.Fatalf("%s: %q at %d of %s", w.s, got.State, got.Sequence, got.Stream)
			}
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		st := newStore(t)
		s := uniqueStream(t, "Probe")
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := st.Put(cctx, snap(s, 1, 1, "x")); !errors.Is(err, context.Canceled) {
			t.Fatalf("Put with a cancelled context: got %v, want context.Canceled", err)
		}
		if _, err := st.Get(cctx, s); !errors.Is(err, context.Canceled) {
			t.Fatalf("Get with a cancelled context: got %v, want context.Canceled", err)
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
		put(t, st, snap(s, 5000, 1, "top"))
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
