package projection_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/internal/probe"
	"github.com/aggregatekit/eventsourcing/projection"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

func newRunner(t testing.TB, m *tally, src projection.Source, store projection.Store, opts ...projection.RunnerOption) *projection.Runner {
	t.Helper()
	p, err := projection.New("tally", probe.NewRegistry(), m)
	if err != nil {
		t.Fatal(err)
	}
	r, err := projection.NewRunner(p, src, store, append([]projection.RunnerOption{projection.WithBackoff(time.Millisecond, 10*time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRunFollowsTheFeed(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := memory.NewBackend()
	streams := streamsOf(5)
	heads := map[es.StreamID]int64{}
	appendAdds(t, b, streams, 20, 2, heads, "a")
	m := newTally()
	r := newRunner(t, m, projection.FromFeed(b), projection.NewMemoryStore(), projection.WithBatchSize(7))
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	waitFor(t, "the first 40 events", func() bool { return m.count() == 40 })
	if st := r.Status(); !st.Running {
		t.Fatalf("status %+v: not running", st)
	}
	appendAdds(t, b, streams, 30, 3, heads, "b")
	waitFor(t, "the next 90 events", func() bool { return m.count() == 130 })
	if err := r.CatchUp(ctx); !errors.Is(err, projection.ErrRunning) {
		t.Fatalf("CatchUp while Run runs: %v", err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v, want context.Canceled", err)
	}
	checkModel(t, m, fold(t, b))
}

// A source that delivers commits again (at least once) must not make the
// runner apply anything twice, whether the repeat comes at an old position
// or a new one (a broker's duplicate).
func TestRepeatedDeliveriesAreSkipped(t *testing.T) {
	ctx := context.Background()
	s := es.StreamID{AggregateType: "Probe", Key: "r"}
	c1, c2, c3 := addCommit(t, s, 0, 2, "c1"), addCommit(t, s, 2, 1, "c2"), addCommit(t, s, 3, 2, "c3")
	src := listSource{commits: []backend.FeedCommit{
		{Commit: c1, Position: pos(1)},
		{Commit: c1, Position: pos(2)}, // the same commit again, later
		{Commit: c2, Position: pos(3)},
		{Commit: c1, Position: pos(4)},
		{Commit: c3, Position: pos(5)},
		{Commit: c2, Position: pos(6)},
	}}
	m := newTally()
	r := newRunner(t, m, src, projection.NewMemoryStore(), projection.WithBatchSize(2))
	if err := r.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	checkModel(t, m, map[es.StreamID][]string{s: {"c1-0", "c1-1", "c2-0", "c3-0", "c3-1"}})
	if st := r.Status(); st.Applied != 5 || st.Skipped != 5 || st.Position != pos(6) {
		t.Fatalf("status %+v", st)
	}
}

func TestGapStopsTheRunnerAfterStoringWhatCameBefore(t *testing.T) {
	ctx := context.Background()
	s, other := es.StreamID{AggregateType: "Probe", Key: "g"}, es.StreamID{AggregateType: "Probe", Key: "o"}
	c1, c3 := addCommit(t, s, 0, 1, "c1"), addCommit(t, s, 2, 1, "c3") // c2 (sequence 2) is missing
	o1 := addCommit(t, other, 0, 1, "o1")
	src := listSource{commits: []backend.FeedCommit{{Commit: c1, Position: pos(1)}, {Commit: o1, Position: pos(2)}, {Commit: c3, Position: pos(3)}}}
	m := newTally()
	store := projection.NewMemoryStore()
	r := newRunner(t, m, src, store)
	err := r.CatchUp(ctx)
	var gap *projection.GapError
	if !errors.As(err, &gap) || !errors.Is(err, projection.ErrGap) || gap.Stream != s || gap.Last != 1 || gap.Got != 3 || gap.Position != pos(3) {
		t.Fatalf("got %v, want a *GapError for %s at 3 after 1", err, s)
	}
	if st := r.Status(); st.Position != pos(2) || st.Err == nil {
		t.Fatalf("status %+v: want the checkpoint before the gap and the error", st)
	}
	checkModel(t, m, map[es.StreamID][]string{s: {"c1-0"}, other: {"o1-0"}})
	// It stops again at the same place: a gap is never skipped.
	if err := newRunner(t, m, src, store).CatchUp(ctx); !errors.Is(err, projection.ErrGap) {
		t.Fatalf("second run: %v", err)
	}
}

// poisoned returns a model whose handler fails for the event IDs in bad
// (times[id] counts the calls).
func poisoned(bad map[string]int, calls map[string]int) *tally {
	m := newTally()
	m.fail = func(ev projection.Event, e probe.Added) error {
		calls[e.ID]++
		if bad[e.ID] != 0 {
			if bad[e.ID] > 0 {
				bad[e.ID]--
			}
			return fmt.Errorf("cannot apply %s", e.ID)
		}
		return nil
	}
	return m
}

func TestPoisonStop(t *testing.T) {
	ctx := context.Background()
	b := memory.NewBackend()
	s := es.StreamID{AggregateType: "Probe", Key: "p"}
	heads := map[es.StreamID]int64{}
	appendAdds(t, b, []es.StreamID{s}, 4, 3, heads, "x") // commits x-p-0, x-p-3, x-p-6, x-p-9
	bad, calls := map[string]int{"x-p-3-1": -1}, map[string]int{}
	m := poisoned(bad, calls)
	store := projection.NewMemoryStore()
	var retries atomic.Int32
	r := newRunner(t, m, projection.FromFeed(b), store, projection.WithPolicy(projection.Policy{Attempts: 3, MinDelay: -1}),
		projection.WithHooks(projection.Hooks{Retry: func(ev projection.Event, attempt int, err error) { retries.Add(1) }}))
	err := r.CatchUp(ctx)
	var pe *projection.PoisonError
	if !errors.As(err, &pe) || pe.Attempts != 3 || pe.Event.Sequence != 5 || !strings.Contains(err.Error(), "cannot apply x-p-3-1") {
		t.Fatalf("got %v, want a *PoisonError after 3 attempts at sequence 5", err)
	}
	if calls["x-p-3-1"] != 3 || retries.Load() != 2 {
		t.Fatalf("tried %d times with %d retry hooks, want 3 and 2", calls["x-p-3-1"], retries.Load())
	}
	// Everything before it is stored, nothing after it applied.
	if got := m.snapshot()[s]; strings.Join(got, ",") != "x-p-0-0,x-p-0-1,x-p-0-2,x-p-3-0" {
		t.Fatalf("applied %v", got)
	}
	// Fixed, the next run goes on from there.
	delete(bad, "x-p-3-1")
	if err := newRunner(t, m, projection.FromFeed(b), store).CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	checkModel(t, m, fold(t, b))
}

func TestPoisonParkReplayAndDiscard(t *testing.T) {
	ctx := context.Background()
	b := memory.NewBackend()
	streams := streamsOf(2)
	heads := map[es.StreamID]int64{}
	appendAdds(t, b, streams, 6, 2, heads, "x")
	bad, calls := map[string]int{"x-s000-2-0": -1, "x-s001-4-1": 1}, map[string]int{}
	m := poisoned(bad, calls)
	store := projection.NewMemoryStore()
	var parkedHook []projection.Parked
	r := newRunner(t, m, projection.FromFeed(b), store,
		projection.WithPolicy(projection.Policy{Attempts: 2, MinDelay: time.Millisecond, Then: projection.Park}),
		projection.WithHooks(projection.Hooks{Park: func(p projection.Parked) { parkedHook = append(parkedHook, p) }}))
	if err := r.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	// x-s001-4-1 failed once and succeeded on its second try.
	if calls["x-s001-4-1"] != 2 || calls["x-s000-2-0"] != 2 {
		t.Fatalf("calls %v", calls)
	}
	var parked []projection.Parked
	for p, err := range r.Parked(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		parked = append(parked, p)
	}
	if len(parked) != 1 || len(parkedHook) != 1 || parked[0].Sequence != 3 || parked[0].Stream != streams[0] ||
		parked[0].Attempts != 2 || !strings.Contains(parked[0].Error, "cannot apply x-s000-2-0") || parked[0].Type != "Added" ||
		parked[0].Metadata["batch"] != "x-s000-2" || len(parked[0].Data) == 0 {
		t.Fatalf("parked %+v", parked)
	}
	if st := r.Status(); st.Parked != 1 || st.Applied != 11 {
		t.Fatalf("status %+v", st)
	}
	// Everything else of the stream is applied; the parked event is not.
	want := fold(t, b)
	if got := m.snapshot()[streams[0]]; len(got) != len(want[streams[0]])-1 {
		t.Fatalf("stream 0 has %d events applied, want %d", len(got), len(want[streams[0]])-1)
	}
	// A replay that fails again leaves it parked.
	if err := r.Replay(ctx, streams[0], 3); err == nil || !strings.Contains(err.Error(), "cannot apply") {
		t.Fatalf("a failing replay: %v", err)
	}
	if n := countParked(t, r); n != 1 {
		t.Fatalf("%d parked after a failed replay, want 1", n)
	}
	delete(bad, "x-s000-2-0")
	if err := r.Replay(ctx, streams[0], 3); err != nil {
		t.Fatal(err)
	}
	if err := r.Replay(ctx, streams[0], 3); !errors.Is(err, projection.ErrNotParked) {
		t.Fatalf("a second replay: %v", err)
	}
	if n := countParked(t, r); n != 0 {
		t.Fatalf("%d parked after the replay", n)
	}
	if got := m.snapshot()[streams[0]]; len(got) != len(want[streams[0]]) || got[len(got)-1] != "x-s000-2-0" {
		t.Fatalf("after the replay: %v", got)
	}

	// Discard drops one without applying it.
	appendAdds(t, b, streams[:1], 1, 1, heads, "y")
	bad["y-s000-6-0"] = -1
	if err := r.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if n := countParked(t, r); n != 1 {
		t.Fatalf("%d parked", n)
	}
	if err := r.Discard(ctx, streams[0], 7); err != nil {
		t.Fatal(err)
	}
	if n := countParked(t, r); n != 0 {
		t.Fatalf("%d parked after Discard", n)
	}
}

func countParked(t *testing.T, r *projection.Runner) int {
	t.Helper()
	n := 0
	for _, err := range r.Parked(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

// An event that does not decode is not retried: it is parked (or stops
// the runner) at once.
func TestUndecodableEventIsParkedWithoutRetries(t *testing.T) {
	ctx := context.Background()
	b := memory.NewBackend()
	s := es.StreamID{AggregateType: "Probe", Key: "d"}
	c := addCommit(t, s, 0, 3, "d")
	c.Records[1].Data = []byte(`{"ID": 12}`) // a number where a string belongs
	if err := b.Append(ctx, c); err != nil {
		t.Fatal(err)
	}
	m := newTally()
	r := newRunner(t, m, projection.FromFeed(b), projection.NewMemoryStore(),
		projection.WithPolicy(projection.Policy{Attempts: 5, MinDelay: time.Hour, Then: projection.Park}))
	if err := r.CatchUp(ctx); err != nil { // would take hours if it waited to retry
		t.Fatal(err)
	}
	var parked []projection.Parked
	for p, err := range r.Parked(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		parked = append(parked, p)
	}
	if len(parked) != 1 || parked[0].Attempts != 1 || parked[0].Sequence != 2 {
		t.Fatalf("parked %+v", parked)
	}
	if got := m.snapshot()[s]; strings.Join(got, ",") != "d-0,d-2" {
		t.Fatalf("applied %v", got)
	}
}

// A handler that panics is a failed event, not a crashed runner.
func TestPanickingHandlerIsAPoisonEvent(t *testing.T) {
	ctx := context.Background()
	b := memory.NewBackend()
	s := es.StreamID{AggregateType: "Probe", Key: "panic"}
	if err := b.Append(ctx, addCommit(t, s, 0, 2, "p")); err != nil {
		t.Fatal(err)
	}
	m := newTally()
	m.fail = func(ev projection.Event, e probe.Added) error {
		if e.ID == "p-1" {
			panic("boom")
		}
		return nil
	}
	r := newRunner(t, m, projection.FromFeed(b), projection.NewMemoryStore(), projection.WithPolicy(projection.Policy{Attempts: 1}))
	err := r.CatchUp(ctx)
	if !errors.Is(err, projection.ErrPoison) || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("got %v", err)
	}
}

// flaky wraps a Store and fails a share of Begin and Commit calls (after
// the handler ran, for Commit), as a database under faults would.
type flaky struct {
	projection.Store
	every int // one call in every (on average) fails
}

var errFlaky = errors.New("injected store failure")

func (f *flaky) Begin(ctx context.Context, id projection.ID) (projection.Tx, error) {
	if rand.N(f.every) == 0 {
		return nil, errFlaky
	}
	tx, err := f.Store.Begin(ctx, id)
	if err != nil {
		return nil, err
	}
	return &flakyTx{Tx: tx, f: f}, nil
}

type flakyTx struct {
	projection.Tx
	f *flaky
}

func (t *flakyTx) Commit(ctx context.Context, p projection.Position) error {
	if rand.N(t.f.every) == 0 {
		t.Tx.Rollback()
		return errFlaky
	}
	return t.Tx.Commit(ctx, p)
}

func TestStoreFailuresAreRetriedWithoutApplyingTwice(t *testing.T) {
	ctx := context.Background()
	b := memory.NewBackend()
	heads := map[es.StreamID]int64{}
	appendAdds(t, b, streamsOf(7), 300, 2, heads, "f")
	m := newTally()
	var errs atomic.Int32
	r := newRunner(t, m, projection.FromFeed(b), &flaky{Store: projection.NewMemoryStore(), every: 3}, projection.WithBatchSize(5),
		projection.WithHooks(projection.Hooks{Error: func(err error) {
			if !errors.Is(err, errFlaky) {
				t.Errorf("unexpected error %v", err)
			}
			errs.Add(1)
		}}))
	if err := r.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if errs.Load() == 0 {
		t.Fatal("no failure was injected")
	}
	checkModel(t, m, fold(t, b))
}

// Two runners of one projection on one store serialise on the checkpoint
// and together apply everything once.
func TestTwoRunnersOfOneProjection(t *testing.T) {
	ctx := context.Background()
	b := memory.NewBackend()
	heads := map[es.StreamID]int64{}
	appendAdds(t, b, streamsOf(9), 500, 1, heads, "t")
	m := newTally()
	store := projection.NewMemoryStore()
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		r := newRunner(t, m, projection.FromFeed(b), store, projection.WithBatchSize(3))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.CatchUp(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	checkModel(t, m, fold(t, b))
}

func TestInvalidCheckpointStopsTheRunner(t *testing.T) {
	ctx := context.Background()
	b := memory.NewBackend()
	store := projection.NewMemoryStore()
	tx, err := store.Begin(ctx, projection.ID{Name: "tally", Version: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx, "not-a-memory-position"); err != nil {
		t.Fatal(err)
	}
	err = newRunner(t, newTally(), projection.FromFeed(b), store).CatchUp(ctx)
	if !errors.Is(err, backend.ErrInvalidPosition) {
		t.Fatalf("got %v, want ErrInvalidPosition", err)
	}
}

// A rebuild: version 2 is built from the beginning beside the live version
// 1, reports progress, then is activated.
func TestRebuildBesideTheLiveVersion(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := memory.NewBackend()
	heads := map[es.StreamID]int64{}
	streams := streamsOf(50)
	appendAdds(t, b, streams, 2000, 2, heads, "r")
	store := projection.NewMemoryStore()
	reg := probe.NewRegistry()

	live := newTally()
	p1, err := projection.New("totals", reg, live)
	if err != nil {
		t.Fatal(err)
	}
	r1, err := projection.NewRunner(p1, projection.FromFeed(b), store)
	if err != nil {
		t.Fatal(err)
	}
	if err := r1.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r1.Activate(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r1.Run(ctx) }()

	next := newTally()
	p2, err := projection.New("totals", reg, next, projection.WithVersion("2"))
	if err != nil {
		t.Fatal(err)
	}
	var progress []projection.Batch
	r2, err := projection.NewRunner(p2, projection.FromFeed(b), store, projection.WithBatchSize(100),
		projection.WithHooks(projection.Hooks{Batch: func(b projection.Batch) { progress = append(progress, b) }}))
	if err != nil {
		t.Fatal(err)
	}
	appendAdds(t, b, streams, 100, 1, heads, "during") // writes go on during the rebuild
	if err := r2.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if len(progress) < 20 {
		t.Fatalf("%d progress reports for 2100 commits in batches of 100", len(progress))
	}
	applied := 0
	for i, p := range progress {
		applied += p.Applied
		if i > 0 && p.Position <= progress[i-1].Position {
			t.Fatalf("progress went back: %q after %q", p.Position, progress[i-1].Position)
		}
	}
	if applied != 4100 || r2.Status().Applied != 4100 {
		t.Fatalf("progress reports %d events, status %d, want 4100", applied, r2.Status().Applied)
	}
	if v, _ := store.Active(ctx, "totals"); v != "1" {
		t.Fatalf("active version %q before the switch", v)
	}
	if err := r2.Activate(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := store.Active(ctx, "totals"); v != "2" {
		t.Fatalf("active version %q after the switch", v)
	}
	waitFor(t, "the live version", func() bool { return live.count() == 4100 })
	cancel()
	<-done
	checkModel(t, next, fold(t, b))
	checkModel(t, live, fold(t, b))
	if err := store.Delete(context.Background(), p1.ID()); err != nil {
		t.Fatal(err)
	}
}

// A rebuild of 100,000 events reports its progress as it goes and ends
// with the read model of every stored event (the live version's, which
// TestRebuildBesideTheLiveVersion compares with a rebuild).
func TestRebuild100000Events(t *testing.T) {
	ctx := context.Background()
	b := memory.NewBackend()
	heads := map[es.StreamID]int64{}
	appendAdds(t, b, streamsOf(500), 25_000, 4, heads, "big")
	store := projection.NewMemoryStore()
	reg := probe.NewRegistry()
	build := func(version string, hooks projection.Hooks) (*tally, *projection.Runner) {
		m := newTally()
		p, err := projection.New("big", reg, m, projection.WithVersion(version))
		if err != nil {
			t.Fatal(err)
		}
		r, err := projection.NewRunner(p, projection.FromFeed(b), store, projection.WithBatchSize(500), projection.WithHooks(hooks))
		if err != nil {
			t.Fatal(err)
		}
		return m, r
	}
	var reports []projection.Batch
	next, r2 := build("2", projection.Hooks{Batch: func(b projection.Batch) { reports = append(reports, b) }})
	// Status is readable from another goroutine while the rebuild runs.
	stop := make(chan struct{})
	var seen []projection.Status
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				seen = append(seen, r2.Status())
			}
		}
	})
	if err := r2.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	if err := r2.Activate(ctx); err != nil {
		t.Fatal(err)
	}
	applied := 0
	for i, rep := range reports {
		applied += rep.Applied
		if i > 0 && rep.Position <= reports[i-1].Position {
			t.Fatalf("progress went back at report %d", i)
		}
	}
	if len(reports) != 50 || applied != 100_000 {
		t.Fatalf("%d reports of %d events, want 50 of 100000 in total", len(reports), applied)
	}
	st := r2.Status()
	if st.Applied != 100_000 || st.Commits != 25_000 || !st.CaughtUp || st.Lag != 0 {
		t.Fatalf("final status %+v", st)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i].Applied < seen[i-1].Applied {
			t.Fatalf("Status went back: %d after %d", seen[i].Applied, seen[i-1].Applied)
		}
	}
	t.Logf("%d progress reports, %d status reads during the rebuild", len(reports), len(seen))
	checkModel(t, next, fold(t, b))
}

func TestStartCatchesUpThenFollows(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := memory.NewBackend()
	heads := map[es.StreamID]int64{}
	streams := streamsOf(3)
	appendAdds(t, b, streams, 30, 1, heads, "s")
	m := newTally()
	r := newRunner(t, m, projection.FromFeed(b), projection.NewMemoryStore())
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if n := m.count(); n != 30 {
		t.Fatalf("Start returned with %d events applied, want 30", n)
	}
	appendAdds(t, b, streams, 30, 1, heads, "t")
	waitFor(t, "the events committed after Start", func() bool { return m.count() == 60 })
	if err := r.Start(ctx); !errors.Is(err, projection.ErrRunning) {
		t.Fatalf("a second Start: %v", err)
	}
	cancel()
	r.Wait()
	if r.Status().Running {
		t.Fatal("running after Wait")
	}
	checkModel(t, m, fold(t, b))
}
