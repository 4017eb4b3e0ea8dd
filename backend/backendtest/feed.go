package backendtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aggregatekit/eventsourcing/backend"
)

// RunFeed runs the Feed conformance suite. newBackend is called once per
// subtest and must return a Backend that implements backend.Feed. Other
// tests may write to the same database at the same time: the suite only
// looks at the commits of its own streams.
func RunFeed(t *testing.T, newBackend func(t *testing.T) backend.Backend, opts ...Option) {
	t.Helper()
	ctx := context.Background()
	open := func(t *testing.T) (backend.Backend, backend.Feed) {
		t.Helper()
		b := newBackend(t)
		t.Cleanup(func() { _ = b.Close() })
		f, ok := b.(backend.Feed)
		if !ok {
			t.Fatalf("%T does not implement backend.Feed", b)
		}
		return b, f
	}

	t.Run("OrderAndPositions", func(t *testing.T) {
		b, f := open(t)
		start := end(t, f)
		base := uniqueStream(t, "Feed")
		streams := []backend.StreamID{base, {AggregateType: "Feed", Key: base.Key + "-b"}, {AggregateType: "Other", Key: base.Key}}
		var want []backend.Commit
		heads := map[backend.StreamID]int64{}
		for i := 0; i < 12; i++ {
			s := streams[i%len(streams)]
			c := commit(s, heads[s], 1+i%3, fmt.Sprintf("f%d", i))
			if err := b.Append(ctx, c); err != nil {
				t.Fatal(err)
			}
			heads[s] += int64(len(c.Records))
			want = append(want, c)
		}
		got := readOwn(t, f, start, streams)
		if len(got) != len(want) {
			t.Fatalf("the feed yielded %d of the %d commits appended", len(got), len(want))
		}
		for i, c := range got {
			checkCommit(t, c.Commit, want[i])
			if i > 0 && !(got[i-1].Position < c.Position) {
				t.Fatalf("positions do not increase: %q then %q", got[i-1].Position, c.Position)
			}
			if c.Position <= start {
				t.Fatalf("position %q is not after the starting position %q", c.Position, start)
			}
		}
		// Reading after each position yields exactly the commits after it.
		for i, c := range got {
			rest := readOwn(t, f, c.Position, streams)
			if len(rest) != len(got)-i-1 {
				t.Fatalf("after position %d: %d commits, want %d", i, len(rest), len(got)-i-1)
			}
			for j, r := range rest {
				if r.ID != got[i+1+j].ID || r.Position != got[i+1+j].Position {
					t.Fatalf("after position %d, commit %d is %s at %q, want %s at %q", i, j, r.ID, r.Position, got[i+1+j].ID, got[i+1+j].Position)
				}
			}
		}
		// A position round-trips through its string form.
		if again := readOwn(t, f, backend.Position(string(got[5].Position)), streams); len(again) != len(got)-6 {
			t.Fatalf("a position rebuilt from its string: %d commits, want %d", len(again), len(got)-6)
		}
	})

	t.Run("InvalidPosition", func(t *testing.T) {
		_, f := open(t)
		var err error
		for _, e := range f.ReadFeed(ctx, "not a position \x00") {
			if e != nil {
				err = e
				break
			}
		}
		if !errors.Is(err, backend.ErrInvalidPosition) {
			t.Fatalf("got %v, want ErrInvalidPosition", err)
		}
	})

	t.Run("EarlyBreak", func(t *testing.T) {
		b, f := open(t)
		start := end(t, f)
		s := uniqueStream(t, "Feed")
		for i := int64(0); i < 5; i++ {
			if err := b.Append(ctx, commit(s, i, 1, "eb")); err != nil {
				t.Fatal(err)
			}
		}
		n := 0
		for _, err := range f.ReadFeed(ctx, start) {
			if err != nil {
				t.Fatal(err)
			}
			if n++; n == 2 {
				break
			}
		}
		if got := readOwn(t, f, start, []backend.StreamID{s}); len(got) != 5 {
			t.Fatalf("after an early break the feed yields %d commits, want 5", len(got))
		}
	})

	t.Run("Wait", func(t *testing.T) {
		b, f := open(t)
		start := end(t, f)
		s := uniqueStream(t, "Feed")
		go func() {
			time.Sleep(50 * time.Millisecond)
			_ = b.Append(ctx, commit(s, 0, 1, "wake"))
		}()
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		for len(readOwn(t, f, start, []backend.StreamID{s})) == 0 {
			if err := f.WaitFeed(wctx, start); err != nil {
				t.Fatalf("WaitFeed never saw the append: %v", err)
			}
		}
		cctx, cancel2 := context.WithCancel(ctx)
		cancel2()
		done := make(chan error, 1)
		go func() { done <- f.WaitFeed(cctx, end(t, f)) }()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Fatalf("WaitFeed with a cancelled context: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("WaitFeed with a cancelled context did not return")
		}
	})

	t.Run("TailingReaderMissesNothing", func(t *testing.T) {
		b, f := open(t)
		start := end(t, f)
		base := uniqueStream(t, "Feed")
		const writers, commits = 16, 20
		hot := backend.StreamID{AggregateType: "Feed", Key: base.Key + "-hot"}
		streams := []backend.StreamID{hot}
		for w := 0; w < writers; w++ {
			streams = append(streams, backend.StreamID{AggregateType: "Feed", Key: fmt.Sprintf("%s-%d", base.Key, w)})
		}
		var acked sync.Map // commit ID -> backend.Commit
		var done atomic.Bool
		seen := map[string]int{}
		var order []backend.FeedCommit
		readerErr := make(chan error, 1)
		go func() {
			pos := start
			rctx, cancel := context.WithTimeout(ctx, deadline(t))
			defer cancel()
			for {
				finished := done.Load() // read before the pass: a pass after it sees every acknowledged commit
				for c, err := range f.ReadFeed(rctx, pos) {
					if err != nil {
						readerErr <- err
						return
					}
					if c.Position <= pos {
						readerErr <- fmt.Errorf("position %q yielded after %q", c.Position, pos)
						return
					}
					pos = c.Position
					if ownStream(c.Stream, streams) {
						seen[c.ID]++
						order = append(order, c)
					}
				}
				if finished {
					readerErr <- nil
					return
				}
				wctx, wcancel := context.WithTimeout(rctx, 20*time.Millisecond)
				_ = f.WaitFeed(wctx, pos)
				wcancel()
				if rctx.Err() != nil {
					readerErr <- rctx.Err()
					return
				}
			}
		}()
		racingWriters(t, writers, func(w int) error {
			own := streams[w+1]
			for i := 0; i < commits; i++ {
				c := commit(own, int64(i), 1, fmt.Sprintf("own%d-%d", w, i))
				if err := b.Append(ctx, c); err != nil {
					return err
				}
				acked.Store(c.ID, c)
				for attempt := 0; ; attempt++ { // and one racing commit on the hot stream
					h, err := headOf(ctx, b, hot)
					if err != nil {
						return err
					}
					c := commit(hot, h, 1, fmt.Sprintf("hot%d-%d", w, i))
					err = b.Append(ctx, c)
					if err == nil {
						acked.Store(c.ID, c)
						break
					}
					if !errors.Is(err, backend.ErrConcurrency) || attempt > 1000 {
						return err
					}
				}
			}
			return nil
		})
		done.Store(true)
		if err := <-readerErr; err != nil {
			t.Fatalf("tailing reader: %v", err)
		}
		missed, total := 0, 0
		acked.Range(func(k, _ any) bool {
			total++
			if seen[k.(string)] == 0 {
				missed++
			}
			return true
		})
		if missed > 0 {
			t.Fatalf("the tailing reader missed %d of %d acknowledged commits", missed, total)
		}
		for id, n := range seen {
			if n != 1 {
				t.Fatalf("commit %s yielded %d times", id, n)
			}
			if _, ok := acked.Load(id); !ok {
				t.Fatalf("commit %s yielded but never acknowledged", id)
			}
		}
		next := map[backend.StreamID]int64{}
		for _, c := range order { // each stream in order, without gaps
			if c.Expected != next[c.Stream] {
				t.Fatalf("stream %s: the feed yields a commit after %d where %d was expected", c.Stream, c.Expected, next[c.Stream])
			}
			next[c.Stream] = c.Last()
		}
	})

	t.Run("Closed", func(t *testing.T) {
		b := newBackend(t)
		f, ok := b.(backend.Feed)
		if !ok {
			t.Fatalf("%T does not implement backend.Feed", b)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		var err error
		for _, e := range f.ReadFeed(ctx, "") {
			err = e
			break
		}
		if !errors.Is(err, backend.ErrClosed) {
			t.Fatalf("ReadFeed after Close: got %v, want ErrClosed", err)
		}
	})
}

// end returns the position of the last commit the feed yields now.
func end(t *testing.T, f backend.Feed) backend.Position {
	t.Helper()
	var p backend.Position
	for c, err := range f.ReadFeed(context.Background(), "") {
		if err != nil {
			t.Fatalf("ReadFeed: %v", err)
		}
		p = c.Position
	}
	return p
}

// readOwn returns the commits of streams the feed yields after pos.
func readOwn(t *testing.T, f backend.Feed, pos backend.Position, streams []backend.StreamID) []backend.FeedCommit {
	t.Helper()
	var out []backend.FeedCommit
	for c, err := range f.ReadFeed(context.Background(), pos) {
		if err != nil {
			t.Fatalf("ReadFeed after %q: %v", pos, err)
		}
		if ownStream(c.Stream, streams) {
			out = append(out, c)
		}
	}
	return out
}

func ownStream(s backend.StreamID, streams []backend.StreamID) bool {
	for _, o := range streams {
		if s == o {
			return true
		}
	}
	return false
}

// checkCommit fails t unless got is the commit want as stored.
func checkCommit(t *testing.T, got, want backend.Commit) {
	t.Helper()
	if got.Stream != want.Stream || got.Expected != want.Expected || got.ID != want.ID {
		t.Fatalf("commit %s of %s after %d read back as %s of %s after %d", want.ID, want.Stream, want.Expected, got.ID, got.Stream, got.Expected)
	}
	checkRecords(t, got.Records, want.Records)
}
