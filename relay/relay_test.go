package relay_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aggregatekit/eventsourcing/internal/outboxtest"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/internal/probe"
	"github.com/aggregatekit/eventsourcing/middleware/publish"
	"github.com/aggregatekit/eventsourcing/relay"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

var ctx = context.Background()

// fast makes a relay poll and back off quickly.
var fast = []relay.Option{relay.WithPollInterval(5 * time.Millisecond), relay.WithBackoff(time.Millisecond, 10*time.Millisecond)}

// newSource returns a memory backend to relay from: its feed for "feed",
// else an outbox over it, which it also returns.
func newSource(kind string) (backend.Backend, *outboxtest.Backend) {
	if kind == "feed" {
		return memory.NewBackend(), nil
	}
	ob := outboxtest.New()
	return ob, ob
}

// delivered records what a Bus delivered, per stream.
type delivered struct {
	mu   sync.Mutex
	ids  map[es.StreamID][]string // event IDs in delivery order
	seqs map[es.StreamID][]int64
}

func (d *delivered) handler(_ context.Context, e probe.Added, rec es.Record) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ids == nil {
		d.ids, d.seqs = map[es.StreamID][]string{}, map[es.StreamID][]int64{}
	}
	d.ids[rec.Stream] = append(d.ids[rec.Stream], e.ID)
	d.seqs[rec.Stream] = append(d.seqs[rec.Stream], rec.Sequence)
	return nil
}

func (d *delivered) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, ids := range d.ids {
		n += len(ids)
	}
	return n
}

// checkAtLeastOnceInOrder fails unless every stream's deliveries, with
// repeats of already delivered sequences removed, are 1..want[stream].
func (d *delivered) checkAtLeastOnceInOrder(t *testing.T, want map[es.StreamID]int64) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	for s, n := range want {
		var next int64 = 1
		for _, seq := range d.seqs[s] {
			switch {
			case seq == next:
				next++
			case seq < next: // a redelivery of something delivered: allowed
			default:
				t.Fatalf("%s: sequence %d delivered before %d (deliveries %v)", s, seq, next, d.seqs[s])
			}
		}
		if next != n+1 {
			t.Fatalf("%s: delivered up to %d, stored %d", s, next-1, n)
		}
	}
}

// commitSome makes n commits of 1 to 3 events to each of keys on store,
// returning the stream heads.
func commitSome(t *testing.T, store es.EventStore, keys []string, n int) map[es.StreamID]int64 {
	t.Helper()
	heads := map[es.StreamID]int64{}
	for i := 0; i < n; i++ {
		for _, k := range keys {
			p, err := probe.New(k, "", probe.NewRegistry(), store)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Handle(ctx, probe.Add{Batch: fmt.Sprintf("%s#%d", k, i), Size: 1 + i%3}); err != nil {
				t.Fatal(err)
			}
			heads[es.StreamID{AggregateType: "Probe", Key: k}] = p.SequenceNumber()
		}
	}
	return heads
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// start runs r until the test ends, and returns a function that stops it
// and returns Run's result.
func start(t *testing.T, r *relay.Relay) func() error {
	t.Helper()
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func events(heads map[es.StreamID]int64) int {
	n := 0
	for _, h := range heads {
		n += int(h)
	}
	return n
}

func TestFeedToBus(t *testing.T) {
	b := memory.NewBackend()
	store := es.NewStore(b)
	bus := publish.NewBus()
	var got delivered
	publish.On(bus, got.handler)

	heads := commitSome(t, store, []string{"a", "b", "c"}, 10) // before the relay starts: a crash between commit and publish
	src, err := relay.FromBackend(es.BackendOf(store), "bus")
	if err != nil {
		t.Fatal(err)
	}
	r, err := relay.New(src, relay.ToPublisher(bus, probe.NewRegistry()), append(fast, relay.WithBatchSize(7))...)
	if err != nil {
		t.Fatal(err)
	}
	stop := start(t, r)
	for k, h := range commitSome(t, store, []string{"b", "d"}, 5) { // while it runs
		heads[k] = h
	}
	waitFor(t, "every event", func() bool { return got.count() >= events(heads) })
	waitFor(t, "caught up", func() bool { return r.Stats().CaughtUp })
	if err := stop(); err != nil {
		t.Fatalf("Run returned %v after cancellation", err)
	}
	if got.count() != events(heads) {
		t.Fatalf("delivered %d events, stored %d: a single healthy relay delivers each once", got.count(), events(heads))
	}
	got.checkAtLeastOnceInOrder(t, heads)
	st := r.Stats()
	if st.Running || st.Events != int64(events(heads)) || st.Commits != 3*10+2*5 || st.Lag != 0 || st.Failures != 0 || st.Position == "" {
		t.Fatalf("stats %+v", st)
	}
	if saved, _ := b.LoadCheckpoint(ctx, "bus"); saved != st.Position {
		t.Fatalf("checkpoint %q, stats position %q", saved, st.Position)
	}
	// A new relay under the same name starts after the checkpoint.
	var again delivered
	bus2 := publish.NewBus()
	publish.On(bus2, again.handler)
	r2, _ := relay.New(src, relay.ToPublisher(bus2, probe.NewRegistry()), fast...)
	stop2 := start(t, r2)
	waitFor(t, "caught up", func() bool { return r2.Stats().CaughtUp })
	_ = stop2()
	if again.count() != 0 {
		t.Fatalf("a relay resuming from the checkpoint delivered %d events again", again.count())
	}
}

// A failing sink is retried with back-off; nothing is lost and every
// stream is delivered in order, whatever failed.
func TestFailuresAreRetriedInOrder(t *testing.T) {
	for _, source := range []string{"feed", "outbox"} {
		t.Run(source, func(t *testing.T) {
			b, ob := newSource(source)
			store := es.NewStore(b)
			bus := publish.NewBus()
			var got delivered
			publish.On(bus, got.handler)
			inner := relay.ToPublisher(bus, probe.NewRegistry())
			var mu sync.Mutex
			calls := 0
			flaky := relay.SinkFunc(func(ctx context.Context, commits []backend.Commit) error {
				mu.Lock()
				calls++
				n := calls
				mu.Unlock()
				switch n % 3 {
				case 1: // fail everything
					return errors.New("broker down")
				case 2: // publish the first half, report the rest of each stream as failed
					half := commits[:len(commits)/2]
					if err := inner.PublishCommits(ctx, half); err != nil {
						return err
					}
					var refs []backend.CommitRef
					for _, c := range commits[len(commits)/2:] {
						refs = append(refs, c.Ref())
					}
					if len(refs) == 0 {
						return nil
					}
					return &relay.Error{Commits: refs, Err: errors.New("half down")}
				}
				return inner.PublishCommits(ctx, commits)
			})
			heads := commitSome(t, store, []string{"a", "b", "c", "d"}, 12)
			src, err := relay.FromBackend(b, "flaky")
			if err != nil {
				t.Fatal(err)
			}
			r, err := relay.New(src, flaky, append(fast, relay.WithBatchSize(5))...)
			if err != nil {
				t.Fatal(err)
			}
			start(t, r)
			waitFor(t, "caught up", func() bool { st := r.Stats(); return st.CaughtUp && st.Commits >= 48 })
			got.checkAtLeastOnceInOrder(t, heads)
			st := r.Stats()
			if st.Failures == 0 || st.LastError == nil || !errors.Is(st.LastError, publish.ErrNotPublished) && st.LastError.Error() == "" {
				t.Fatalf("stats %+v", st)
			}
			if ob != nil && ob.Left() != 0 {
				t.Fatalf("%d commits left pending", ob.Left())
			}
		})
	}
}

// The relay confirms only what the sink confirmed: the checkpoint stops
// before the first failed commit; the outbox keeps the failed commit and
// the later ones of its stream pending.
func TestPartialFailureConfirmsOnlyWhatWasPublished(t *testing.T) {
	c := es.StreamID{AggregateType: "Probe", Key: "c"}
	for _, source := range []string{"feed", "outbox"} {
		t.Run(source, func(t *testing.T) {
			b, ob := newSource(source)
			store := es.NewStore(b)
			commitSome(t, store, []string{"a", "c"}, 3) // a1 c1 a2 c2 a3 c3
			var published []backend.CommitRef
			sink := relay.SinkFunc(func(_ context.Context, commits []backend.Commit) error {
				var failed []backend.CommitRef
				for _, cm := range commits {
					if cm.Stream == c && cm.First() > 1 { // c's second commit fails; the sink carries on with a
						failed = append(failed, cm.Ref())
						continue
					}
					published = append(published, cm.Ref())
				}
				return &relay.Error{Commits: failed[:1], Err: errors.New("no")} // names only the first failure
			})
			src, _ := relay.FromBackend(b, "partial")
			r, _ := relay.New(src, sink, fast...)
			stop := start(t, r)
			waitFor(t, "a failure", func() bool { return r.Stats().Failures > 0 })
			_ = stop()
			st := r.Stats()
			if !errors.Is(st.LastError, publish.ErrNotPublished) || st.CaughtUp || st.Lag <= 0 {
				t.Fatalf("stats %+v", st)
			}
			if source == "feed" {
				// Feed order a1 c1 a2 c2 a3 c3: the checkpoint stops after a2.
				mb := b.(*memory.Backend)
				saved, _ := mb.LoadCheckpoint(ctx, "partial")
				var pos backend.Position
				n := 0
				for fc := range mb.ReadFeed(ctx, "") {
					if n++; n == 3 {
						pos = fc.Position
					}
				}
				if saved != pos || st.Commits != 3 {
					t.Fatalf("checkpoint %q, want %q (after 3 commits); stats %+v", saved, pos, st)
				}
				return
			}
			// Outbox: a's three and c's first are marked; c2 and c3 (after
			// the failed c2, whatever the sink said) stay pending.
			var left []string
			for cm := range ob.Pending(ctx, 0) {
				left = append(left, fmt.Sprintf("%s@%d", cm.Stream.Key, cm.First()))
			}
			if !slices.Equal(left, []string{"c@2", "c@4"}) {
				t.Fatalf("pending %v, want c's second and third commits", left)
			}
		})
	}
}

// A commit whose event type the registry does not know is not delivered
// (nor are the later commits of its stream); the relay reports it and
// delivers it once the type is registered.
func TestUndecodableCommitWaits(t *testing.T) {
	b := memory.NewBackend()
	store := es.NewStore(b)
	heads := commitSome(t, store, []string{"a"}, 4)
	bus := publish.NewBus()
	var got delivered
	publish.On(bus, got.handler)
	reg := es.NewStandardEventRegistry("empty") // knows nothing yet
	src, _ := relay.FromBackend(b, "typed")
	r, _ := relay.New(src, relay.ToPublisher(bus, reg), fast...)
	start(t, r)
	waitFor(t, "a failure", func() bool { return r.Stats().Failures > 1 })
	if st := r.Stats(); !errors.Is(st.LastError, es.ErrUnknownEventType) || got.count() != 0 {
		t.Fatalf("stats %+v, %d delivered", st, got.count())
	}
	if err := reg.RegisterEvent(probe.Added{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivery", func() bool { return got.count() == events(heads) })
	waitFor(t, "recovery", func() bool { return r.Stats().ConsecutiveFailures == 0 })
	got.checkAtLeastOnceInOrder(t, heads)
}

// Cancelling Run mid-publish abandons the call; a new relay delivers what
// was not confirmed. A crash between commit and publish loses nothing.
func TestCancelMidBatchThenResume(t *testing.T) {
	for _, source := range []string{"feed", "outbox"} {
		t.Run(source, func(t *testing.T) {
			b, ob := newSource(source)
			store := es.NewStore(b)
			heads := commitSome(t, store, []string{"a", "b", "c"}, 8)
			bus := publish.NewBus()
			var got delivered
			publish.On(bus, got.handler)
			inner := relay.ToPublisher(bus, probe.NewRegistry())
			rctx, cancel := context.WithCancel(ctx)
			// The sink delivers part of its second batch, then the relay is
			// killed (its context cancelled) while the call is in flight.
			calls := 0
			dying := relay.SinkFunc(func(ctx context.Context, commits []backend.Commit) error {
				calls++
				if calls == 2 {
					_ = inner.PublishCommits(ctx, commits[:2])
					cancel()
					<-ctx.Done()
					return ctx.Err()
				}
				return inner.PublishCommits(ctx, commits)
			})
			src, _ := relay.FromBackend(b, "dying")
			r, _ := relay.New(src, dying, append(fast, relay.WithBatchSize(4))...)
			if err := r.Run(rctx); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if r.Stats().Commits != 4 {
				t.Fatalf("first relay confirmed %d commits, want the first batch of 4", r.Stats().Commits)
			}
			r2, _ := relay.New(src, inner, fast...)
			start(t, r2)
			waitFor(t, "caught up", func() bool { return r2.Stats().CaughtUp })
			got.checkAtLeastOnceInOrder(t, heads)
			if got.count() <= events(heads) {
				// The commits the dying call delivered are delivered again:
				// at least once, never lost.
				t.Fatalf("delivered %d events for %d stored, want the dying call's again", got.count(), events(heads))
			}
			if ob != nil && ob.Left() != 0 {
				t.Fatalf("%d commits left pending", ob.Left())
			}
		})
	}
}

func TestMisuse(t *testing.T) {
	b := memory.NewBackend()
	sink := relay.ToPublisher(publish.NewBus(), nil)
	if _, err := relay.FromBackend(b, ""); !errors.Is(err, relay.ErrInvalidName) {
		t.Errorf("FromBackend without a name: %v", err)
	}
	if _, err := relay.FromBackend(struct{ backend.Backend }{b}, "x"); !errors.Is(err, relay.ErrNoSource) {
		t.Errorf("FromBackend of a plain backend: %v", err)
	}
	if _, err := relay.New(relay.Source{}, sink); !errors.Is(err, relay.ErrNoSource) {
		t.Errorf("New(zero source): %v", err)
	}
	if _, err := relay.New(relay.FromFeed(b, b, ""), sink); !errors.Is(err, relay.ErrInvalidName) {
		t.Errorf("New(feed without name): %v", err)
	}
	if _, err := relay.New(relay.FromFeed(nil, b, "x"), sink); !errors.Is(err, relay.ErrNoSource) {
		t.Errorf("New(nil feed): %v", err)
	}
	if _, err := relay.New(relay.FromOutbox(nil), sink); !errors.Is(err, relay.ErrNoSource) {
		t.Errorf("New(nil outbox): %v", err)
	}
	if _, err := relay.New(relay.FromFeed(b, b, "x"), nil); !errors.Is(err, relay.ErrNilSink) {
		t.Errorf("New(nil sink): %v", err)
	}
	if _, err := relay.New(relay.FromFeed(b, b, "x"), relay.ToPublisher((*publish.Bus)(nil), nil)); !errors.Is(err, relay.ErrNilSink) {
		t.Errorf("New(nil publisher): %v", err)
	}
	r, err := relay.New(relay.FromFeed(b, b, "x"), sink, fast...)
	if err != nil {
		t.Fatal(err)
	}
	start(t, r)
	waitFor(t, "running", func() bool { return r.Stats().Running })
	if err := r.Run(ctx); !errors.Is(err, relay.ErrRunning) {
		t.Errorf("second Run: %v", err)
	}
	// A closed store stops the relay: retrying cannot help.
	c := memory.NewBackend()
	rc, _ := relay.New(relay.FromFeed(c, c, "x"), sink, fast...)
	_ = c.Close()
	if err := rc.Run(ctx); !errors.Is(err, backend.ErrClosed) {
		t.Errorf("Run on a closed store: %v", err)
	}
	// So does a checkpoint that is not a position of the feed.
	d := memory.NewBackend()
	_ = d.SaveCheckpoint(ctx, "x", "garbage")
	rd, _ := relay.New(relay.FromFeed(d, d, "x"), sink, fast...)
	if err := rd.Run(ctx); !errors.Is(err, backend.ErrInvalidPosition) {
		t.Errorf("Run with a bad checkpoint: %v", err)
	}
}

// A panicking sink is a failure, retried, not a crash.
func TestSinkPanic(t *testing.T) {
	b := memory.NewBackend()
	commitSome(t, es.NewStore(b), []string{"a"}, 1)
	r, _ := relay.New(relay.FromFeed(b, b, "p"), relay.SinkFunc(func(context.Context, []backend.Commit) error { panic("boom") }), fast...)
	start(t, r)
	waitFor(t, "a failure", func() bool { return r.Stats().Failures > 0 })
	if err := r.Stats().LastError; err == nil || !strings.Contains(err.Error(), "panicked: boom") {
		t.Fatalf("last error %v", err)
	}
}
