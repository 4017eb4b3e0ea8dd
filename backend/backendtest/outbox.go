package backendtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aggregatekit/eventsourcing/backend"
)

// RunOutbox runs the Outbox conformance suite. newBackend is called once per
// subtest and must return a Backend that implements backend.Outbox, over
// storage that no other test writes to while the subtest runs (Pending
// yields the pending commits of every stream). If Pending reads an index
// that lags behind writes, say by how much with WithEventualConsistency.
func RunOutbox(t *testing.T, newBackend func(t *testing.T) backend.Backend, opts ...Option) {
	t.Helper()
	cfg := newConfig(opts)
	ctx := context.Background()
	open := func(t *testing.T) (backend.Backend, backend.Outbox) {
		t.Helper()
		b := newBackend(t)
		t.Cleanup(func() { _ = b.Close() })
		o, ok := b.(backend.Outbox)
		if !ok {
			t.Fatalf("%T does not implement backend.Outbox", b)
		}
		return b, o
	}
	// settle waits until cond holds of what Pending yields, for up to the
	// configured lag (at least once).
	settle := func(t *testing.T, o backend.Outbox, limit int, cond func([]backend.Commit) bool) []backend.Commit {
		t.Helper()
		until := time.Now().Add(cfg.eventual)
		for {
			got := pending(t, o, limit)
			if cond(got) || time.Now().After(until) {
				return got
			}
			time.Sleep(cfg.eventual / 20)
		}
	}

	t.Run("PendingUntilMarked", func(t *testing.T) {
		b, o := open(t)
		a, c := uniqueStream(t, "Outbox"), uniqueStream(t, "Outbox")
		want := []backend.Commit{commit(a, 0, 2, "a1"), commit(c, 0, 1, "c1"), commit(a, 2, 3, "a2")}
		for _, cm := range want {
			if err := b.Append(ctx, cm); err != nil {
				t.Fatal(err)
			}
		}
		got := settle(t, o, 0, func(p []backend.Commit) bool { return len(p) == 3 })
		if len(got) != 3 {
			t.Fatalf("Pending yields %d commits, want the 3 appended", len(got))
		}
		byID := map[string]backend.Commit{}
		for _, cm := range got {
			byID[cm.ID] = cm
		}
		for _, w := range want {
			g, ok := byID[w.ID]
			if !ok {
				t.Fatalf("commit %s is not pending", w.ID)
			}
			checkCommit(t, g, w)
		}
		checkStreamOrder(t, got)

		if err := o.MarkPublished(ctx, []backend.CommitRef{want[0].Ref(), want[1].Ref()}); err != nil {
			t.Fatalf("MarkPublished: %v", err)
		}
		got = settle(t, o, 0, func(p []backend.Commit) bool { return len(p) == 1 })
		if len(got) != 1 || got[0].ID != want[2].ID {
			t.Fatalf("after marking two of three, Pending yields %v", ids(got))
		}
		// Marking again, or a commit that does not exist, is not an error.
		ghost := backend.CommitRef{Stream: a, First: 99, Last: 99, ID: "ghost"}
		if err := o.MarkPublished(ctx, []backend.CommitRef{want[0].Ref(), ghost, want[2].Ref()}); err != nil {
			t.Fatalf("MarkPublished of marked and missing commits: %v", err)
		}
		if got := settle(t, o, 0, func(p []backend.Commit) bool { return len(p) == 0 }); len(got) != 0 {
			t.Fatalf("after marking every commit, Pending yields %v", ids(got))
		}
		// The events load as before.
		if n := len(loadAll(t, b, a, 0)); n != 5 {
			t.Fatalf("after marking, stream %s holds %d events, want 5", a, n)
		}
		if err := o.MarkPublished(ctx, nil); err != nil {
			t.Fatalf("MarkPublished of nothing: %v", err)
		}
	})

	t.Run("LimitAndStreamOrder", func(t *testing.T) {
		b, o := open(t)
		s := uniqueStream(t, "Outbox")
		var want []backend.Commit
		for i := int64(0); i < 6; i++ {
			cm := commit(s, i, 1, fmt.Sprintf("o%d", i))
			if err := b.Append(ctx, cm); err != nil {
				t.Fatal(err)
			}
			want = append(want, cm)
		}
		settle(t, o, 0, func(p []backend.Commit) bool { return len(p) == 6 })
		for round := 0; round < 6; round++ {
			got := settle(t, o, 2, func(p []backend.Commit) bool { return len(p) > 0 && p[0].ID == want[round].ID })
			if len(got) > 2 {
				t.Fatalf("Pending(limit 2) yields %d commits", len(got))
			}
			if len(got) == 0 || got[0].ID != want[round].ID {
				t.Fatalf("round %d: Pending yields %v first, want the oldest pending commit %s", round, ids(got), want[round].ID)
			}
			checkStreamOrder(t, got)
			if err := o.MarkPublished(ctx, []backend.CommitRef{got[0].Ref()}); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("RacingWritersAndRelay", func(t *testing.T) {
		b, o := open(t)
		base := uniqueStream(t, "Outbox")
		hot := backend.StreamID{AggregateType: "Outbox", Key: base.Key + "-hot"}
		const writers, commits = 8, 10
		acked := make(chan backend.Commit, writers*commits*2)
		stop := make(chan struct{})
		relayed := map[string]bool{}
		relayErr := make(chan error, 1)
		go func() { // a relay: take pending commits in order, mark them
			next := map[backend.StreamID]int64{}
			for {
				select {
				case <-stop:
					relayErr <- nil
					return
				default:
				}
				var batch []backend.Commit
				for cm, err := range o.Pending(ctx, 50) {
					if err != nil {
						relayErr <- err
						return
					}
					batch = append(batch, cm)
				}
				refs := make([]backend.CommitRef, 0, len(batch))
				for _, cm := range batch {
					if cm.Expected < next[cm.Stream] {
						continue // yielded again before the mark was visible
					}
					if cm.Expected != next[cm.Stream] {
						relayErr <- fmt.Errorf("stream %s: Pending yields the commit after %d before the one after %d", cm.Stream, cm.Expected, next[cm.Stream])
						return
					}
					next[cm.Stream] = cm.Last()
					relayed[cm.ID] = true
					refs = append(refs, cm.Ref())
				}
				if err := o.MarkPublished(ctx, refs); err != nil {
					relayErr <- err
					return
				}
				if len(batch) == 0 {
					time.Sleep(5 * time.Millisecond)
				}
			}
		}()
		racingWriters(t, writers, func(w int) error {
			own := backend.StreamID{AggregateType: "Outbox", Key: fmt.Sprintf("%s-%d", base.Key, w)}
			var h int64
			for i := 0; i < commits; i++ {
				cm := commit(own, h, 1+i%2, fmt.Sprintf("w%d-%d", w, i))
				h = cm.Last()
				if err := b.Append(ctx, cm); err != nil {
					return err
				}
				acked <- cm
				for attempt := 0; ; attempt++ {
					h, err := headOf(ctx, b, hot)
					if err != nil {
						return err
					}
					hc := commit(hot, h, 1, fmt.Sprintf("hot%d-%d", w, i))
					if err = b.Append(ctx, hc); err == nil {
						acked <- hc
						break
					}
					if attempt > 1000 {
						return err
					}
				}
			}
			return nil
		})
		close(acked)
		deadline := time.Now().Add(30*time.Second + 2*cfg.eventual)
		for {
			if len(settle(t, o, 0, func(p []backend.Commit) bool { return len(p) == 0 })) == 0 || time.Now().After(deadline) {
				break
			}
		}
		close(stop)
		if err := <-relayErr; err != nil {
			t.Fatalf("relay: %v", err)
		}
		for cm := range acked {
			if !relayed[cm.ID] {
				t.Fatalf("acknowledged commit %s of %s after %d was never pending", cm.ID, cm.Stream, cm.Expected)
			}
		}
		if left := pending(t, o, 0); len(left) != 0 {
			t.Fatalf("%d commits still pending after the relay marked everything", len(left))
		}
	})
}

func pending(t *testing.T, o backend.Outbox, limit int) []backend.Commit {
	t.Helper()
	var out []backend.Commit
	for c, err := range o.Pending(context.Background(), limit) {
		if err != nil {
			t.Fatalf("Pending: %v", err)
		}
		out = append(out, c)
	}
	return out
}

func ids(cs []backend.Commit) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

// checkStreamOrder fails t unless the commits of each stream in got come in
// stream order without gaps between them.
func checkStreamOrder(t *testing.T, got []backend.Commit) {
	t.Helper()
	last := map[backend.StreamID]int64{}
	for _, c := range got {
		if l, ok := last[c.Stream]; ok && c.Expected != l {
			t.Fatalf("stream %s: Pending yields the commit after %d right after the one ending at %d", c.Stream, c.Expected, l)
		}
		last[c.Stream] = c.Last()
	}
}
