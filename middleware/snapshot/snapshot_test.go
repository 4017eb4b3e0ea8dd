package snapshot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/internal/probe"
	"github.com/aggregatekit/eventsourcing/middleware/snapshot"
	"github.com/aggregatekit/eventsourcing/stores/memory"
	"github.com/aggregatekit/eventsourcing/storetest"
)

// faultySnapshots wraps a memory snapshot store with injectable faults.
type faultySnapshots struct {
	*memory.SnapshotStore
	getErr, putErr, delErr error
	mangle                 func(es.Snapshot) es.Snapshot // applied to what Get returns
	deletes                atomic.Int64
	gets                   atomic.Int64
}

func (f *faultySnapshots) Get(ctx context.Context, s es.StreamID) (es.Snapshot, error) {
	f.gets.Add(1)
	if f.getErr != nil {
		return es.Snapshot{}, f.getErr
	}
	snap, err := f.SnapshotStore.Get(ctx, s)
	if err == nil && f.mangle != nil {
		snap = f.mangle(snap)
	}
	return snap, err
}

func (f *faultySnapshots) Put(ctx context.Context, snap es.Snapshot) error {
	if f.putErr != nil {
		return f.putErr
	}
	return f.SnapshotStore.Put(ctx, snap)
}

func (f *faultySnapshots) Delete(ctx context.Context, s es.StreamID) error {
	f.deletes.Add(1)
	if f.delErr != nil {
		return f.delErr
	}
	return f.SnapshotStore.Delete(ctx, s)
}

// reports collects what the middleware reports.
type reports struct {
	mu   sync.Mutex
	errs []error
}

func (r *reports) handle(_ context.Context, err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
}

func (r *reports) take() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.errs
	r.errs = nil
	return out
}

// expectOne fails t unless exactly one problem was reported, for op,
// matching target; it returns it.
func (r *reports) expectOne(t *testing.T, op snapshot.Op, target error) *snapshot.Error {
	t.Helper()
	errs := r.take()
	if len(errs) != 1 {
		t.Fatalf("reported %d problems, want 1: %v", len(errs), errs)
	}
	var e *snapshot.Error
	if !errors.As(errs[0], &e) {
		t.Fatalf("reported %T (%v), want *snapshot.Error", errs[0], errs[0])
	}
	if e.Op != op || !errors.Is(e, target) {
		t.Fatalf("reported %v (op %q), want op %q matching %v", e, e.Op, op, target)
	}
	return e
}

func (r *reports) expectNone(t *testing.T) {
	t.Helper()
	if errs := r.take(); len(errs) != 0 {
		t.Fatalf("unexpected problems reported: %v", errs)
	}
}

// rig is a snapshot stack over a counting memory backend.
type rig struct {
	backend *probe.CountingBackend
	snaps   *faultySnapshots
	rep     *reports
	store   es.EventStore
	reg     *es.StandardEventRegistry
}

func newRig(t *testing.T, policy snapshot.Policy, opts ...snapshot.Option) *rig {
	t.Helper()
	r := &rig{
		backend: &probe.CountingBackend{Backend: memory.NewBackend()},
		snaps:   &faultySnapshots{SnapshotStore: memory.NewSnapshotStore()},
		rep:     &reports{},
		reg:     probe.NewRegistry(),
	}
	mw, err := snapshot.New(r.snaps, policy, append(opts, snapshot.WithErrorHandler(r.rep.handle))...)
	if err != nil {
		t.Fatal(err)
	}
	r.store = es.Wrap(es.NewStore(r.backend), mw)
	t.Cleanup(func() { _ = r.store.Close() })
	return r
}

var ctx = context.Background()

func (r *rig) probe(t *testing.T, key string) *probe.Probe {
	t.Helper()
	p, err := probe.New(key, "", r.reg, r.store)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// loaded returns a freshly loaded Probe and how many records the backend
// yielded to load it.
func (r *rig) loaded(t *testing.T, key string) (*probe.Probe, int64) {
	t.Helper()
	r.backend.TakeLoaded()
	p := r.probe(t, key)
	if err := p.Refresh(ctx); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	return p, r.backend.TakeLoaded()
}

func (r *rig) add(t *testing.T, key string, sizes ...int) {
	t.Helper()
	p := r.probe(t, key)
	for i, n := range sizes {
		if err := p.Handle(ctx, probe.Add{Batch: fmt.Sprintf("%s%d", key, i), Size: n}); err != nil {
			t.Fatalf("Handle: %v", err)
		}
	}
}

func (r *rig) snapshotAt(t *testing.T, key string) int64 {
	t.Helper()
	snap, err := r.snaps.SnapshotStore.Get(ctx, es.StreamID{AggregateType: "Probe", Key: key})
	if errors.Is(err, es.ErrSnapshotNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return snap.Sequence
}

func wantIDs(key string, sizes ...int) string {
	var ids []string
	for i, n := range sizes {
		for j := 0; j < n; j++ {
			ids = append(ids, fmt.Sprintf("%s%d-%d", key, i, j))
		}
	}
	return strings.Join(ids, ",")
}

func checkProbe(t *testing.T, p *probe.Probe, ids string) {
	t.Helper()
	n := int64(strings.Count(ids, ",") + 1)
	if ids == "" {
		n = 0
	}
	if got := strings.Join(p.IDs, ","); got != ids || p.Count != n || p.SequenceNumber() != n {
		t.Fatalf("state: count %d, sequence %d, ids %s; want %d events: %s", p.Count, p.SequenceNumber(), got, n, ids)
	}
}

func TestConformance(t *testing.T) {
	mem := func(t *testing.T, policy snapshot.Policy, snaps es.SnapshotStore, layers ...es.SnapshotStore) es.EventStore {
		mw, err := snapshot.New(snaps, policy)
		if err != nil {
			t.Fatal(err)
		}
		mws := []es.Middleware{mw}
		for _, s := range layers {
			inner, err := snapshot.New(s, policy)
			if err != nil {
				t.Fatal(err)
			}
			mws = append(mws, inner)
		}
		return es.Wrap(es.NewStore(memory.NewBackend()), mws...)
	}
	t.Run("EveryN3", func(t *testing.T) {
		storetest.RunEventStore(t, func(t *testing.T) es.EventStore {
			return mem(t, snapshot.EveryN(3), memory.NewSnapshotStore())
		})
	})
	t.Run("EveryCommit", func(t *testing.T) {
		storetest.RunEventStore(t, func(t *testing.T) es.EventStore {
			return mem(t, snapshot.EveryN(1), memory.NewSnapshotStore())
		})
	})
	// Every snapshot read back is garbage: every load falls back to a full
	// replay, and the aggregates must not notice.
	t.Run("CorruptSnapshots", func(t *testing.T) {
		storetest.RunEventStore(t, func(t *testing.T) es.EventStore {
			return mem(t, snapshot.EveryN(2), &faultySnapshots{SnapshotStore: memory.NewSnapshotStore(),
				mangle: func(s es.Snapshot) es.Snapshot { s.State = []byte(`{"Count":1000,"IDs":"not a list"}`); return s }})
		})
	})
	t.Run("StaleVersions", func(t *testing.T) {
		storetest.RunEventStore(t, func(t *testing.T) es.EventStore {
			return mem(t, snapshot.EveryN(2), &faultySnapshots{SnapshotStore: memory.NewSnapshotStore(),
				mangle: func(s es.Snapshot) es.Snapshot { s.Version++; return s }})
		})
	})
	// Two snapshot layers, each with its own store: the inner one restores
	// through the outer one's tail loader.
	t.Run("Nested", func(t *testing.T) {
		storetest.RunEventStore(t, func(t *testing.T) es.EventStore {
			return mem(t, snapshot.EveryN(3), memory.NewSnapshotStore(), memory.NewSnapshotStore())
		})
	})
}

func TestNewRejectsBadConfig(t *testing.T) {
	snaps := memory.NewSnapshotStore()
	cases := map[string]struct {
		store  es.SnapshotStore
		policy snapshot.Policy
	}{
		"EveryN(0)":     {snaps, snapshot.EveryN(0)},
		"EveryN(-5)":    {snaps, snapshot.EveryN(-5)},
		"zero Policy":   {snaps, snapshot.Policy{}},
		"nil Predicate": {snaps, snapshot.Predicate(nil)},
		"nil store":     {nil, snapshot.EveryN(10)},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			mw, err := snapshot.New(c.store, c.policy)
			if !errors.Is(err, snapshot.ErrInvalidConfig) || mw != nil {
				t.Fatalf("got %v (middleware %v), want ErrInvalidConfig", err, mw != nil)
			}
		})
	}
	if _, err := snapshot.New(snaps, snapshot.EveryN(1), nil, snapshot.WithLogger(nil), snapshot.WithErrorHandler(nil)); err != nil {
		t.Fatalf("nil options: %v", err)
	}
}

func TestPolicyBoundaries(t *testing.T) {
	s := es.StreamID{AggregateType: "T", Key: "k"}
	every100 := snapshot.EveryN(100)
	for _, c := range []struct {
		before, after int64
		due           bool
	}{
		{98, 103, true}, // a multi-event commit crossing 100
		{99, 100, true}, // landing on it
		{100, 101, false},
		{0, 99, false},
		{0, 100, true},
		{101, 199, false},
		{150, 250, true},
		{0, 1000, true}, // crossing several: one snapshot
		{5, 5, false},   // empty commit
		{1<<62 + 99, 1<<62 + 101, (1<<62+101)/100 > (1<<62+99)/100},
	} {
		if got := every100.Due(s, c.before, c.after); got != c.due {
			t.Errorf("EveryN(100).Due(%d, %d) = %v, want %v", c.before, c.after, got, c.due)
		}
	}
	if !snapshot.EveryN(1).Due(s, 7, 8) {
		t.Error("EveryN(1) must snapshot after every commit")
	}
	if (snapshot.Policy{}).Due(s, 0, 1000) || snapshot.EveryN(0).Due(s, 0, 1000) {
		t.Error("an invalid policy is never due")
	}
}

func TestBoundaryCrossingCommits(t *testing.T) {
	r := newRig(t, snapshot.EveryN(3))
	p := r.probe(t, "b")
	// Commit sizes and where the snapshot must be after each.
	steps := []struct {
		size int
		snap int64
	}{
		{2, 0},  // 0 -> 2
		{2, 4},  // 2 -> 4 crosses 3
		{1, 4},  // 4 -> 5
		{1, 6},  // 5 -> 6 lands on 6
		{2, 6},  // 6 -> 8
		{7, 15}, // 8 -> 15 crosses 9 and 12: one snapshot at 15
	}
	for i, step := range steps {
		if err := p.Handle(ctx, probe.Add{Batch: fmt.Sprintf("s%d", i), Size: step.size}); err != nil {
			t.Fatal(err)
		}
		if got := r.snapshotAt(t, "b"); got != step.snap {
			t.Fatalf("after commit %d (size %d, head %d): snapshot at %d, want %d", i, step.size, p.SequenceNumber(), got, step.snap)
		}
	}
	r.rep.expectNone(t)
}

func TestPredicatePolicy(t *testing.T) {
	type call struct {
		stream        es.StreamID
		before, after int64
	}
	var mu sync.Mutex
	var calls []call
	policy := snapshot.Predicate(func(s es.StreamID, before, after int64) bool {
		mu.Lock()
		calls = append(calls, call{s, before, after})
		mu.Unlock()
		return after >= 5 && before < 5 // once the stream reaches 5 events
	})
	r := newRig(t, policy)
	r.add(t, "p", 2, 2, 3, 1)
	if got := r.snapshotAt(t, "p"); got != 7 {
		t.Fatalf("snapshot at %d, want 7", got)
	}
	want := []call{{es.StreamID{AggregateType: "Probe", Key: "p"}, 0, 2}, {es.StreamID{AggregateType: "Probe", Key: "p"}, 2, 4},
		{es.StreamID{AggregateType: "Probe", Key: "p"}, 4, 7}, {es.StreamID{AggregateType: "Probe", Key: "p"}, 7, 8}}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Fatalf("predicate called with %v, want %v", calls, want)
	}
	p, n := r.loaded(t, "p")
	checkProbe(t, p, wantIDs("p", 2, 2, 3, 1))
	if n != 2 { // event 7 (checked, not replayed) and 8
		t.Fatalf("loaded %d records, want 2", n)
	}
}

func TestRestoreThenTail(t *testing.T) {
	r := newRig(t, snapshot.EveryN(10), snapshot.WithLoadedLookup(true))
	r.add(t, "t", 4)
	mid, _ := r.loaded(t, "t") // an aggregate loaded up to 4
	// 4 -> 8 -> 12 (snapshot) -> 16 -> 20 (snapshot) -> 23 -> 25
	sizes := []int{4, 4, 4, 4, 3, 2}
	p := r.probe(t, "t")
	for i, n := range sizes {
		if err := p.Handle(ctx, probe.Add{Batch: fmt.Sprintf("u%d", i), Size: n}); err != nil {
			t.Fatal(err)
		}
	}
	if got := r.snapshotAt(t, "t"); got != 20 {
		t.Fatalf("snapshot at %d, want 20", got)
	}
	want := wantIDs("t", 4) + "," + wantIDs("u", sizes...)
	got, n := r.loaded(t, "t")
	checkProbe(t, got, want)
	if n != 6 { // 20 (the check) and 21 to 25
		t.Fatalf("a load after the snapshot read %d records, want 6", n)
	}
	// The aggregate loaded up to 4 also restores the newer snapshot.
	if err := mid.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	checkProbe(t, mid, want)
	if n := r.backend.TakeLoaded(); n != 6 {
		t.Fatalf("loaded %d records, want 6", n)
	}
	// 25 -> 28 crosses no multiple of 10: the snapshot stays at 20, older
	// than the aggregate, which then loads only the new events.
	if err := p.Handle(ctx, probe.Add{Batch: "v", Size: 3}); err != nil {
		t.Fatal(err)
	}
	r.backend.TakeLoaded()
	if err := mid.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if n := r.backend.TakeLoaded(); n != 3 {
		t.Fatalf("incremental refresh loaded %d records, want 3", n)
	}
	checkProbe(t, mid, want+",v-0,v-1,v-2")
	r.rep.expectNone(t)
}

func TestAllKindsRoundTrip(t *testing.T) {
	r := newRig(t, snapshot.EveryN(1))
	w := r.probe(t, "k")
	want := probe.SampleKinds()
	if err := w.Handle(ctx, probe.RecordKinds{Kinds: want}); err != nil {
		t.Fatal(err)
	}
	if err := w.Handle(ctx, probe.Add{Batch: "x", Size: 2}); err != nil {
		t.Fatal(err)
	}
	p, n := r.loaded(t, "k")
	if n != 1 {
		t.Fatalf("loaded %d records, want 1 (the state must come from the snapshot)", n)
	}
	if p.Kinds == nil {
		t.Fatal("Kinds lost")
	}
	probe.CheckKinds(t, *p.Kinds, want)
	if p.Count != 3 || strings.Join(p.IDs, ",") != "x-0,x-1" || p.SequenceNumber() != 3 {
		t.Fatalf("count %d ids %v sequence %d", p.Count, p.IDs, p.SequenceNumber())
	}
	r.rep.expectNone(t)
}

// Wallet keeps its state unexported and includes it in snapshots through
// json.Marshaler and json.Unmarshaler. It reports schema version 2.
type Wallet struct {
	es.AggregateBase `json:"-"`
	balance          int64
	history          map[string]int64
}

type Deposited struct {
	Ref    string
	Amount int64
}

type Deposit struct {
	Ref    string
	Amount int64
}

func (w *Wallet) SnapshotVersion() int { return 2 }

func (w *Wallet) HandleDeposit(c Deposit) ([]es.Event, error) {
	return []es.Event{Deposited(c)}, nil
}

func (w *Wallet) ReplayDeposited(e Deposited) {
	w.balance += e.Amount
	if w.history == nil {
		w.history = map[string]int64{}
	}
	w.history[e.Ref] = e.Amount
}

type walletJSON struct {
	Balance int64
	History map[string]int64
}

func (w *Wallet) MarshalJSON() ([]byte, error) {
	return json.Marshal(walletJSON{w.balance, w.history})
}

func (w *Wallet) UnmarshalJSON(b []byte) error {
	var v walletJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	w.balance, w.history = v.Balance, v.History
	return nil
}

func newWallet(t *testing.T, key string, reg es.EventRegistry, store es.EventStore) *Wallet {
	t.Helper()
	w := &Wallet{}
	w.Initialize(key, reg, store, func() any { return w })
	if err := w.AutomaticWireup(w); err != nil {
		t.Fatal(err)
	}
	return w
}

func TestUnexportedStateAndVersion(t *testing.T) {
	backend := &probe.CountingBackend{Backend: memory.NewBackend()}
	snaps := memory.NewSnapshotStore()
	mw, err := snapshot.New(snaps, snapshot.EveryN(2))
	if err != nil {
		t.Fatal(err)
	}
	store := es.Wrap(es.NewStore(backend), mw)
	reg := es.NewStandardEventRegistry("wallet")
	if err := reg.RegisterEvent(Deposited{}); err != nil {
		t.Fatal(err)
	}
	w := newWallet(t, "w1", reg, store)
	for i, amt := range []int64{1<<53 + 1, 2, 3, 4} {
		if err := w.Handle(ctx, Deposit{Ref: fmt.Sprint("r", i), Amount: amt}); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := snaps.Get(ctx, es.StreamID{AggregateType: "Wallet", Key: "w1"})
	if err != nil || snap.Sequence != 4 || snap.Version != 2 {
		t.Fatalf("snapshot %d v%d, err %v; want sequence 4, version 2", snap.Sequence, snap.Version, err)
	}
	backend.TakeLoaded()
	got := newWallet(t, "w1", reg, store)
	if err := got.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if n := backend.TakeLoaded(); n != 1 {
		t.Fatalf("loaded %d records, want 1", n)
	}
	if got.balance != 1<<53+10 || len(got.history) != 4 || got.history["r0"] != 1<<53+1 {
		t.Fatalf("unexported state not restored: balance %d history %v", got.balance, got.history)
	}
}

func TestCorruptSnapshotFallsBackToReplay(t *testing.T) {
	stream := es.StreamID{AggregateType: "Probe", Key: "c"}
	for name, state := range map[string]string{
		"garbage": "\x00\xffnot json",
		"empty":   "",
		// Decodes Count before failing on IDs: the aggregate must not keep it.
		"half": `{"Count":1000,"IDs":"not a list"}`,
		// Decode cleanly, but are not the middleware's own output: restored,
		// they would load 7 events as the wrong state, and the next
		// snapshot would make the damage permanent.
		"null":                        "null",
		"empty json":                  "{}",
		"zero count":                  `{"Count":0}`,
		"sealed for another sequence": string(snapshot.Seal(stream, 5, 0, nil, []byte(`{"Count":0}`))),
		"sealed for another stream":   string(snapshot.Seal(es.StreamID{AggregateType: "Probe", Key: "d"}, 6, 0, nil, []byte(`{"Count":0}`))),
		"sealed, then damaged": func() string {
			b := snapshot.Seal(stream, 6, 0, nil, []byte(`{"Count":6,"IDs":["c0-0"]}`))
			b[len(b)-3] ^= 1
			return string(b)
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			r := newRig(t, snapshot.EveryN(5))
			r.add(t, "c", 3, 3, 1) // snapshot at 6, head 7
			if err := r.snaps.SnapshotStore.Put(ctx, es.Snapshot{Stream: stream, Sequence: 6, State: []byte(state)}); err != nil {
				t.Fatal(err)
			}
			p, n := r.loaded(t, "c")
			checkProbe(t, p, wantIDs("c", 3, 3, 1))
			if n != 7 {
				t.Fatalf("loaded %d records, want a full replay of 7", n)
			}
			e := r.rep.expectOne(t, snapshot.OpRestore, es.ErrInvalidSnapshot)
			if e.Stream != stream || e.Sequence != 6 {
				t.Fatalf("reported %v", e)
			}
			// The aggregate stays usable and the next due commit replaces
			// the bad snapshot.
			if err := p.Handle(ctx, probe.Add{Batch: "more", Size: 4}); err != nil {
				t.Fatal(err)
			}
			if got := r.snapshotAt(t, "c"); got != 11 {
				t.Fatalf("snapshot at %d, want 11", got)
			}
			if _, n := r.loaded(t, "c"); n != 1 {
				t.Fatalf("after the new snapshot, loaded %d records, want 1", n)
			}
			r.rep.expectNone(t)
		})
	}
}

// blocking is a snapshot store that never answers before its context ends,
// like a frozen server.
type blocking struct{ es.SnapshotStore }

func (blocking) Get(ctx context.Context, _ es.StreamID) (es.Snapshot, error) {
	<-ctx.Done()
	return es.Snapshot{}, ctx.Err()
}

func (blocking) Put(ctx context.Context, _ es.Snapshot) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestFrozenSnapshotStoreDelaysButNeverFails(t *testing.T) {
	var rep reports
	mw, err := snapshot.New(blocking{memory.NewSnapshotStore()}, snapshot.EveryN(1),
		snapshot.WithTimeout(50*time.Millisecond), snapshot.WithErrorHandler(rep.handle))
	if err != nil {
		t.Fatal(err)
	}
	store := es.Wrap(es.NewStore(memory.NewBackend()), mw)
	p, _ := probe.New("frozen", "", probe.NewRegistry(), store)
	// The caller's own deadline is far away, and also when it has none.
	hour, cancel := context.WithTimeout(ctx, time.Hour)
	defer cancel()
	for _, cctx := range []context.Context{ctx, hour} {
		done := make(chan error, 1)
		go func() { done <- p.Handle(cctx, probe.Add{Batch: "f", Size: 1}) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("a frozen snapshot store failed the command: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("a frozen snapshot store held the command")
		}
	}
	errs := rep.take()
	if len(errs) != 3 { // a Put per command, a Get for the first (the second finds p loaded)
		t.Fatalf("reported %d problems, want 3 (a timed-out Get, two timed-out Puts): %v", len(errs), errs)
	}
	for _, e := range errs {
		if !errors.Is(e, context.DeadlineExceeded) {
			t.Fatalf("reported %v, want a deadline", e)
		}
	}
	if p.Count != 2 {
		t.Fatalf("count %d, want 2", p.Count)
	}
}

func TestVersionMismatchFallsBackToReplay(t *testing.T) {
	r := newRig(t, snapshot.EveryN(5))
	r.add(t, "v", 3, 3, 1) // snapshot at 6 with version 0
	stream := es.StreamID{AggregateType: "Probe", Key: "v"}
	snap, err := r.snaps.SnapshotStore.Get(ctx, stream)
	if err != nil || snap.Version != 0 {
		t.Fatalf("snapshot v%d, %v", snap.Version, err)
	}
	snap.Version = 3 // written by another version of the aggregate; decodes fine
	if err := r.snaps.SnapshotStore.Put(ctx, snap); err != nil {
		t.Fatal(err)
	}
	p, n := r.loaded(t, "v")
	checkProbe(t, p, wantIDs("v", 3, 3, 1))
	if n != 7 {
		t.Fatalf("loaded %d records, want a full replay of 7", n)
	}
	e := r.rep.expectOne(t, snapshot.OpRestore, snapshot.ErrVersionMismatch)
	if !errors.Is(e, es.ErrInvalidSnapshot) || e.Sequence != 6 {
		t.Fatalf("reported %v", e)
	}
	if r.snaps.deletes.Load() != 0 {
		t.Fatal("a snapshot behind the head was deleted; the next due commit replaces it")
	}
}

func TestSnapshotOfAnotherStreamIsRejected(t *testing.T) {
	r := newRig(t, snapshot.EveryN(2))
	r.add(t, "a", 2)
	r.add(t, "b", 1, 1, 1) // snapshot at 2, head 3
	r.snaps.mangle = func(s es.Snapshot) es.Snapshot {
		s.Stream.Key = "a"
		return s
	}
	p, n := r.loaded(t, "b")
	checkProbe(t, p, wantIDs("b", 1, 1, 1))
	if n != 3 {
		t.Fatalf("loaded %d, want 3", n)
	}
	r.rep.expectOne(t, snapshot.OpRestore, es.ErrInvalidSnapshot)
}

// By default a loaded aggregate loads its tail without asking the snapshot
// store, even when a newer snapshot exists; WithLoadedLookup asks.
func TestLoadedAggregateSkipsLookup(t *testing.T) {
	for _, lookup := range []bool{false, true} {
		r := newRig(t, snapshot.EveryN(10), snapshot.WithLoadedLookup(lookup))
		r.add(t, "s", 2)
		held, _ := r.loaded(t, "s")
		r.snaps.gets.Store(0)
		r.add(t, "s", 4, 4, 4) // a snapshot at 10 by another instance
		gets := r.snaps.gets.Load()
		r.backend.TakeLoaded()
		if err := held.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		checkProbe(t, held, wantIDs("s", 2)+","+wantIDs("s", 4, 4, 4))
		n := r.backend.TakeLoaded()
		gets = r.snaps.gets.Load() - gets
		switch {
		case !lookup && (gets != 0 || n != 12):
			t.Fatalf("default: %d Gets, %d records loaded; want 0 and 12", gets, n)
		case lookup && (gets != 1 || n != 5):
			t.Fatalf("WithLoadedLookup: %d Gets, %d records loaded; want 1 and 5 (10 to 14)", gets, n)
		}
		r.rep.expectNone(t)
	}
}

func TestGetFailureFallsBackToReplay(t *testing.T) {
	r := newRig(t, snapshot.EveryN(2))
	r.add(t, "g", 2, 2, 1)
	boom := errors.New("snapshot store down")
	r.snaps.getErr = boom
	p, n := r.loaded(t, "g")
	checkProbe(t, p, wantIDs("g", 2, 2, 1))
	if n != 5 {
		t.Fatalf("loaded %d records, want 5", n)
	}
	if e := r.rep.expectOne(t, snapshot.OpGet, boom); e.Sequence != 0 {
		t.Fatalf("reported %v", e)
	}
	// Commands keep working while the snapshot store is down, on a loaded
	// aggregate (which does not ask it) and on a new one.
	if err := p.Handle(ctx, probe.Add{Batch: "g3", Size: 1}); err != nil {
		t.Fatal(err)
	}
	r.rep.expectNone(t)
	if err := r.probe(t, "g").Handle(ctx, probe.Add{Batch: "g4", Size: 1}); err != nil {
		t.Fatal(err)
	}
	r.rep.expectOne(t, snapshot.OpGet, boom)
	// A missing snapshot is not a problem.
	r.snaps.getErr = nil
	r.add(t, "fresh", 1)
	r.rep.expectNone(t)
}

func TestPutFailureDoesNotFailTheCommand(t *testing.T) {
	r := newRig(t, snapshot.EveryN(2))
	boom := errors.New("snapshot store full")
	r.snaps.putErr = boom
	p := r.probe(t, "f")
	if err := p.Handle(ctx, probe.Add{Batch: "f0", Size: 3}); err != nil {
		t.Fatalf("a snapshot write failure failed the command: %v", err)
	}
	if e := r.rep.expectOne(t, snapshot.OpPut, boom); e.Sequence != 3 {
		t.Fatalf("reported %v", e)
	}
	if p.SequenceNumber() != 3 || p.Count != 3 {
		t.Fatalf("aggregate at %d with %d events, want 3", p.SequenceNumber(), p.Count)
	}
	got, n := r.loaded(t, "f")
	checkProbe(t, got, wantIDs("f", 3))
	if n != 3 {
		t.Fatalf("loaded %d, want 3", n)
	}
	r.rep.expectNone(t)
}

// Leaky cannot be encoded by the JSON codec.
type Leaky struct {
	es.AggregateBase `json:"-"`
	N                int
	C                chan int
}

func (l *Leaky) HandleDeposit(Deposit) ([]es.Event, error) { return []es.Event{Deposited{}}, nil }
func (l *Leaky) ReplayDeposited(Deposited)                 { l.N++ }

func TestEncodeFailureDoesNotFailTheCommand(t *testing.T) {
	rep := &reports{}
	mw, err := snapshot.New(memory.NewSnapshotStore(), snapshot.EveryN(1), snapshot.WithErrorHandler(rep.handle))
	if err != nil {
		t.Fatal(err)
	}
	store := es.Wrap(es.NewStore(memory.NewBackend()), mw)
	reg := es.NewStandardEventRegistry("leaky")
	if err := reg.RegisterEvent(Deposited{}); err != nil {
		t.Fatal(err)
	}
	l := &Leaky{C: make(chan int)}
	l.Initialize("l", reg, store, func() any { return l })
	if err := l.AutomaticWireup(l); err != nil {
		t.Fatal(err)
	}
	if err := l.Handle(ctx, Deposit{}); err != nil {
		t.Fatalf("an encoding failure failed the command: %v", err)
	}
	rep.expectOne(t, snapshot.OpEncode, es.ErrEncoding)
}

func TestSnapshotAheadOfStream(t *testing.T) {
	r := newRig(t, snapshot.EveryN(3))
	r.add(t, "h", 2, 2, 2) // snapshot at 6
	if got := r.snapshotAt(t, "h"); got != 6 {
		t.Fatalf("snapshot at %d", got)
	}
	stream := es.StreamID{AggregateType: "Probe", Key: "h"}
	// The event store loses the stream (an in-memory store restarted, say);
	// the snapshot store keeps the snapshot.
	r.backend = &probe.CountingBackend{Backend: memory.NewBackend()}
	mw, _ := snapshot.New(r.snaps, snapshot.EveryN(3), snapshot.WithErrorHandler(r.rep.handle), snapshot.WithLoadedLookup(true))
	r.store = es.Wrap(es.NewStore(r.backend), mw)

	p, _ := r.loaded(t, "h")
	checkProbe(t, p, "")
	r.rep.expectOne(t, snapshot.OpRestore, snapshot.ErrAheadOfStream)
	if _, err := r.snaps.SnapshotStore.Get(ctx, stream); !errors.Is(err, es.ErrSnapshotNotFound) {
		t.Fatalf("the stale snapshot was not deleted: %v", err)
	}
	// The recreated stream works normally, snapshots included.
	r.add(t, "h", 1, 1, 2)
	if got := r.snapshotAt(t, "h"); got != 4 {
		t.Fatalf("snapshot at %d, want 4", got)
	}
	p, n := r.loaded(t, "h")
	checkProbe(t, p, wantIDs("h", 1, 1, 2))
	if n != 1 {
		t.Fatalf("loaded %d, want 1", n)
	}
	r.rep.expectNone(t)

	// A stream shorter than a snapshot, with the aggregate partly loaded.
	if err := r.snaps.SnapshotStore.Put(ctx, es.Snapshot{Stream: stream, Sequence: 40, State: snapshot.Seal(stream, 40, 0, nil, []byte(`{"Count":40}`))}); err != nil {
		t.Fatal(err)
	}
	if err := p.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	checkProbe(t, p, wantIDs("h", 1, 1, 2))
	r.rep.expectOne(t, snapshot.OpRestore, snapshot.ErrAheadOfStream)

	// A snapshot ahead of the stream that does not even decode, and a
	// failing Delete: reported, and the load still succeeds.
	r.snaps.delErr = errors.New("read-only")
	if err := r.snaps.SnapshotStore.Put(ctx, es.Snapshot{Stream: stream, Sequence: 50, State: snapshot.Seal(stream, 50, 0, nil, []byte(`{`))}); err != nil {
		t.Fatal(err)
	}
	p, _ = r.loaded(t, "h")
	checkProbe(t, p, wantIDs("h", 1, 1, 2))
	errs := r.rep.take()
	if len(errs) != 2 || !errors.Is(errs[0], es.ErrInvalidSnapshot) || !errors.Is(errs[1], r.snaps.delErr) {
		t.Fatalf("reported %v, want a restore failure and a delete failure", errs)
	}
}

func TestLogger(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	snaps := &faultySnapshots{SnapshotStore: memory.NewSnapshotStore()}
	mw, err := snapshot.New(snaps, snapshot.EveryN(1), snapshot.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	store := es.Wrap(es.NewStore(memory.NewBackend()), mw)
	reg := probe.NewRegistry()
	p, _ := probe.New("log", "", reg, store)
	if err := p.Handle(ctx, probe.Add{Batch: "l", Size: 2}); err != nil {
		t.Fatal(err)
	}
	snaps.mangle = func(s es.Snapshot) es.Snapshot { s.Version = 9; return s }
	p, _ = probe.New("log", "", reg, store)
	if err := p.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	snaps.mangle = nil
	snaps.putErr = errors.New("nope")
	if err := p.Handle(ctx, probe.Add{Batch: "m", Size: 1}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		`level=INFO msg="eventsourcing snapshot: restore failed" op=restore stream=Probe/log sequence=2 error="eventsourcing: invalid snapshot: snapshot: schema version mismatch`,
		`level=WARN msg="eventsourcing snapshot: put failed" op=put stream=Probe/log sequence=3 error=nope`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "l-0") {
		t.Errorf("log contains state or event payloads:\n%s", out)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestErrorMessage(t *testing.T) {
	e := &snapshot.Error{Op: snapshot.OpPut, Stream: es.StreamID{AggregateType: "A", Key: "k"}, Sequence: 7, Err: errors.New("x")}
	if got := e.Error(); got != "snapshot: put A/k at sequence 7: x" {
		t.Fatalf("Error() = %q", got)
	}
	e.Sequence = 0
	if got := e.Error(); got != "snapshot: put A/k: x" {
		t.Fatalf("Error() = %q", got)
	}
}

// failingLoads fails every load once armed.
type failingLoads struct {
	es.Backend
	armed atomic.Bool
}

var errLoad = errors.New("load failed")

func (f *failingLoads) Load(ctx context.Context, s es.StreamID, after int64) iter.Seq2[es.Record, error] {
	if f.armed.Load() {
		return func(yield func(es.Record, error) bool) { yield(es.Record{}, errLoad) }
	}
	return f.Backend.Load(ctx, s, after)
}

// A restored snapshot whose tail load fails is not left behind as if the
// aggregate were loaded: the stream was never shown to reach it.
func TestFailedTailLoadDropsTheSnapshotState(t *testing.T) {
	backend := &failingLoads{Backend: memory.NewBackend()}
	mw, err := snapshot.New(memory.NewSnapshotStore(), snapshot.EveryN(2))
	if err != nil {
		t.Fatal(err)
	}
	store := es.Wrap(es.NewStore(backend), mw)
	reg := probe.NewRegistry()
	w, _ := probe.New("k", "", reg, store)
	if err := w.Handle(ctx, probe.Add{Batch: "a", Size: 3}); err != nil {
		t.Fatal(err)
	}
	backend.armed.Store(true)
	p, _ := probe.New("k", "", reg, store)
	if err := p.Refresh(ctx); !errors.Is(err, errLoad) {
		t.Fatalf("Refresh: got %v, want the load error", err)
	}
	if p.SequenceNumber() != 0 || p.Count != 0 {
		t.Fatalf("after a failed tail load: sequence %d count %d, want the zero state", p.SequenceNumber(), p.Count)
	}
	backend.armed.Store(false)
	if err := p.Refresh(ctx); err != nil || p.Count != 3 || p.SequenceNumber() != 3 {
		t.Fatalf("after the store recovers: %v, count %d sequence %d", err, p.Count, p.SequenceNumber())
	}
}
