package eventsourcing_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

// gate is an EventStore whose Refresh blocks until released.
type gate struct {
	es.EventStore
	entered chan struct{}
	release chan struct{}
}

func (g gate) Refresh(ctx context.Context, l es.Loader) error {
	g.entered <- struct{}{}
	<-g.release
	return g.EventStore.Refresh(ctx, l)
}

func TestConcurrentUseIsRefused(t *testing.T) {
	ctx := context.Background()
	g := gate{es.NewStore(memory.NewBackend()), make(chan struct{}), make(chan struct{})}
	a, _ := newAccount("k", bankRegistry(t), g)
	done := make(chan error, 1)
	go func() { done <- a.Handle(ctx, Deposit{Amount: 5}) }()
	<-g.entered // the first call is inside the store
	for name, call := range map[string]func() error{
		"Handle":  func() error { return a.Handle(ctx, Deposit{Amount: 1}) },
		"Refresh": func() error { return a.Refresh(ctx) },
		"Run":     func() error { return a.Run(ctx, func(context.Context) ([]es.Event, error) { return nil, nil }) },
	} {
		if err := call(); !errors.Is(err, es.ErrConcurrentUse) {
			t.Errorf("%s during another call: got %v, want ErrConcurrentUse", name, err)
		}
	}
	close(g.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if a.Balance != 5 || a.SequenceNumber() != 1 {
		t.Fatalf("the first call's result: balance %d at %d, want 5 at 1", a.Balance, a.SequenceNumber())
	}
}

// Sharing one instance between goroutines fails the losers loudly and
// loses nothing that was acknowledged.
func TestSharedInstanceLosesNothing(t *testing.T) {
	ctx := context.Background()
	store := es.NewStore(memory.NewBackend())
	a, _ := newAccount("shared", bankRegistry(t), store)
	var acked, refused atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				switch err := a.Handle(ctx, Deposit{Amount: 1}); {
				case err == nil:
					acked.Add(1)
				case errors.Is(err, es.ErrConcurrentUse):
					refused.Add(1)
				default:
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	b, _ := newAccount("shared", bankRegistry(t), store)
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if b.Balance != acked.Load() {
		t.Fatalf("stored balance %d, acknowledged %d deposits (%d refused)", b.Balance, acked.Load(), refused.Load())
	}
}

// counting counts the records each Refresh loads.
type counting struct {
	es.EventStore
	afters []int64
}

func (c *counting) Refresh(ctx context.Context, l es.Loader) error {
	c.afters = append(c.afters, l.Sequence())
	return c.EventStore.Refresh(ctx, l)
}

// A lost conflict costs the events the loser missed, not the history.
func TestConflictRetryLoadsOnlyTheTail(t *testing.T) {
	ctx := context.Background()
	inner := es.NewStore(memory.NewBackend())
	reg := bankRegistry(t)
	w, _ := newAccount("k", reg, inner)
	for i := 0; i < 50; i++ {
		if err := w.Handle(ctx, Deposit{Amount: 1}); err != nil {
			t.Fatal(err)
		}
	}
	c := &counting{EventStore: inner}
	a, _ := newAccount("k", reg, c)
	if err := a.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	calls := 0
	err := a.Run(ctx, func(context.Context) ([]es.Event, error) {
		if calls++; calls == 1 {
			if err := w.Handle(ctx, Deposit{Amount: 10}); err != nil { // a competing writer
				return nil, err
			}
		}
		return []es.Event{Deposited{Amount: 100}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{0, 50, 50}; fmt.Sprint(c.afters) != fmt.Sprint(want) {
		t.Fatalf("loads started after %v, want %v: the retry must load only what it missed", c.afters, want)
	}
	if a.Balance != 160 || a.SequenceNumber() != 52 {
		t.Fatalf("after the retry: balance %d at %d, want 160 at 52", a.Balance, a.SequenceNumber())
	}
}

// Capped keeps configuration in unexported fields, without ResetState.
type Capped struct {
	es.AggregateBase `json:"-"`
	Total            int64
	Note             string `json:"-"` // not stored: kept like configuration
	limit            int64
}

func (c *Capped) HandleDeposit(d Deposit) ([]es.Event, error) {
	if c.Total+d.Amount > c.limit {
		return nil, fmt.Errorf("over the limit %d", c.limit)
	}
	return []es.Event{Deposited(d)}, nil
}

func (c *Capped) ReplayDeposited(e Deposited) { c.Total += e.Amount }
func (c *Capped) ReplayWithdrawn(e Withdrawn) { c.Total -= e.Amount }

func TestResetKeepsWhatTheCodecDoesNotStore(t *testing.T) {
	ctx := context.Background()
	reg := bankRegistry(t)
	inner := es.NewStore(memory.NewBackend())
	w, _ := newAccount("k", reg, inner)
	for i := 0; i < 3; i++ {
		_ = w.Handle(ctx, Deposit{Amount: 10})
	}
	store := &restoring{EventStore: inner, seq: 2, state: `{"Total":"not a number"}`} // a bad snapshot: reset, replay
	c := &Capped{limit: 100, Note: "config"}
	c.Initialize("k", reg, store, func() any { return c })
	c.SetAggregateType("Account")
	if err := c.AutomaticWireup(c); err != nil {
		t.Fatal(err)
	}
	if err := c.Handle(ctx, Deposit{Amount: 5}); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(store.err, es.ErrInvalidSnapshot) {
		t.Fatalf("restore: %v", store.err)
	}
	if c.limit != 100 || c.Note != "config" || c.Total != 35 {
		t.Fatalf("after a reset and replay: limit %d note %q total %d, want 100 \"config\" 35", c.limit, c.Note, c.Total)
	}
}

func TestEventsWithoutReplayAreNotStored(t *testing.T) {
	ctx := context.Background()
	reg := bankRegistry(t)
	store := es.NewStore(memory.NewBackend())
	a := &Account{}
	a.Initialize("k", reg, store, func() any { return a })
	_ = a.DefineReplayMethod(Deposited{}, func(e es.Event) { a.Balance += e.(Deposited).Amount })
	_ = a.DefineCommandHandler(Withdraw{}, func(context.Context, any) ([]es.Event, error) {
		return []es.Event{Deposited{Amount: 1}, Withdrawn{Amount: 1}}, nil
	})
	if err := a.Handle(ctx, Withdraw{}); !errors.Is(err, es.ErrNoReplay) {
		t.Fatalf("an event nothing applies: got %v, want ErrNoReplay", err)
	}
	if a.SequenceNumber() != 0 {
		t.Fatal("a refused commit moved the sequence")
	}
	a.IgnoreEvents(&Withdrawn{})
	if err := a.Handle(ctx, Withdraw{}); err != nil {
		t.Fatalf("an ignored event: %v", err)
	}
	if a.Balance != 1 || a.SequenceNumber() != 2 {
		t.Fatalf("balance %d at %d, want 1 at 2", a.Balance, a.SequenceNumber())
	}
}

//lint:file-ignore U1000 the unexported fields exist to be refused by the registry

type hidden struct{ amount int64 } // all fields unexported: stored as {}
type Hidden struct{ amount int64 } // likewise
type Marker struct{}               // no data at all: fine
type Tagged struct {
	A int `json:"-"`
} // nothing encoding/json stores
type Mixed struct {
	Amount int64
	note   string
}

func TestRegistryRefusesEventsStoredAsEmpty(t *testing.T) {
	reg := es.NewStandardEventRegistry("t")
	for _, e := range []es.Event{hidden{}, Hidden{}, &Hidden{}, Tagged{}} {
		if err := reg.RegisterEvent(e); !errors.Is(err, es.ErrUnencodableEvent) {
			t.Errorf("%T: got %v, want ErrUnencodableEvent", e, err)
		}
	}
	if err := reg.RegisterEvent(Marker{}, Mixed{}); err != nil {
		t.Fatalf("an event without fields, and one with some exported: %v", err)
	}
}

// handlerCalls counts how often its handler runs.
type handlerCalls struct {
	es.AggregateBase `json:"-"`
	Balance          int64
	calls            int
}

func (h *handlerCalls) HandleDeposit(d Deposit) ([]es.Event, error) {
	h.calls++
	return []es.Event{Deposited(d)}, nil
}
func (h *handlerCalls) ReplayDeposited(e Deposited) { h.Balance += e.Amount }
func (h *handlerCalls) ReplayWithdrawn(e Withdrawn) { h.Balance -= e.Amount }

// lostReply stores the commit, then reports ErrUnknownOutcome.
type lostReply struct {
	es.EventStore
	lose bool
}

func (l *lostReply) Commit(ctx context.Context, c es.Commit) error {
	err := l.EventStore.Commit(ctx, c)
	if err == nil && l.lose {
		l.lose = false
		return fmt.Errorf("connection reset: %w", es.ErrUnknownOutcome)
	}
	return err
}

func TestRepeatedCommandID(t *testing.T) {
	ctx := context.Background()
	reg := bankRegistry(t)
	store := &lostReply{EventStore: es.NewStore(memory.NewBackend()), lose: true}
	mk := func() *handlerCalls {
		h := &handlerCalls{}
		h.Initialize("k", reg, store, func() any { return h })
		h.SetAggregateType("Account")
		if err := h.AutomaticWireup(h); err != nil {
			t.Fatal(err)
		}
		return h
	}
	h := mk()
	cmd := es.WithCommandID(ctx, "deposit-42")
	if err := h.Handle(cmd, Deposit{Amount: 7}); !errors.Is(err, es.ErrUnknownOutcome) {
		t.Fatalf("first attempt: got %v, want ErrUnknownOutcome", err)
	}
	if err := h.Handle(cmd, Deposit{Amount: 7}); err != nil {
		t.Fatalf("repeat: %v", err)
	}
	if h.calls != 1 || h.Balance != 7 || h.SequenceNumber() != 1 {
		t.Fatalf("after the repeat: %d handler calls, balance %d at %d, want 1 call, 7 at 1", h.calls, h.Balance, h.SequenceNumber())
	}
	if err := h.Handle(cmd, Deposit{Amount: 7}); err != nil || h.calls != 1 {
		t.Fatalf("a third repeat ran the handler (%d calls): %v", h.calls, err)
	}
	// A new instance (another process) recognises it from the load.
	n := mk()
	if err := n.Handle(cmd, Deposit{Amount: 7}); err != nil || n.calls != 0 || n.Balance != 7 {
		t.Fatalf("fresh instance: %v, %d calls, balance %d", err, n.calls, n.Balance)
	}
	// Another ID is another command.
	if err := n.Handle(es.WithCommandID(ctx, "deposit-43"), Deposit{Amount: 1}); err != nil || n.Balance != 8 {
		t.Fatalf("another command ID: %v, balance %d", err, n.Balance)
	}
}

func TestIdempotencyWindowOnAWarmInstance(t *testing.T) {
	ctx := context.Background()
	reg := bankRegistry(t)
	store := es.NewStore(memory.NewBackend())
	a, _ := newAccount("k", reg, store)
	a.SetIdempotencyWindow(3)
	if err := a.Handle(es.WithCommandID(ctx, "old"), Deposit{Amount: 1}); err != nil {
		t.Fatal(err)
	}
	other, _ := newAccount("k", reg, store)
	for i := 0; i < 2; i++ {
		if err := other.Handle(ctx, Deposit{Amount: 1}); err != nil {
			t.Fatal(err)
		}
	}
	// "old" is 3 commits back: within a's window of 3 (it loads the 2 new).
	if err := a.Handle(es.WithCommandID(ctx, "old"), Deposit{Amount: 1}); err != nil || a.Balance != 3 {
		t.Fatalf("inside the window: %v, balance %d, want 3", err, a.Balance)
	}
	_ = other.Handle(ctx, Deposit{Amount: 1})
	_ = a.Refresh(ctx)
	// Now 4 commits back, outside the window of a warm instance that
	// loads only the new commit: it runs again, as documented.
	if err := a.Handle(es.WithCommandID(ctx, "old"), Deposit{Amount: 1}); err != nil || a.Balance != 5 {
		t.Fatalf("outside the window: %v, balance %d, want 5", err, a.Balance)
	}
}

// recentStore records the commit IDs a commit reports as recent.
type recentStore struct {
	es.EventStore
	recent []string
	state  any
}

func (r *recentStore) Commit(ctx context.Context, c es.Commit) error {
	if err := r.EventStore.Commit(ctx, c); err != nil {
		return err
	}
	r.recent, r.state = c.RecentCommitIDs(), c.State()
	return nil
}

func TestCommitValue(t *testing.T) {
	ctx := context.Background()
	reg := bankRegistry(t)
	rs := &recentStore{EventStore: es.NewStore(memory.NewBackend())}
	a, _ := newAccount("k", reg, rs)
	a.SetIdempotencyWindow(2)
	for i := 1; i <= 3; i++ {
		if err := a.Handle(es.WithCommandID(ctx, fmt.Sprintf("c%d", i)), Deposit{Amount: 10}); err != nil {
			t.Fatal(err)
		}
	}
	if fmt.Sprint(rs.recent) != "[c2 c3]" {
		t.Fatalf("RecentCommitIDs: %v, want [c2 c3]", rs.recent)
	}
	if acct, ok := rs.state.(*Account); !ok || acct.Balance != 30 {
		t.Fatalf("State after the commit: %#v", rs.state)
	}
	if a.Balance != 30 || a.SequenceNumber() != 3 {
		t.Fatalf("events applied twice or not at all: balance %d at %d", a.Balance, a.SequenceNumber())
	}
	var zero es.Commit
	if zero.State() != nil || zero.RecentCommitIDs() != nil {
		t.Fatal("a Commit not made by an aggregate reports state")
	}
}

// earlyState asks for the state, then fails the commit.
type earlyState struct{ es.EventStore }

func (e earlyState) Commit(_ context.Context, c es.Commit) error {
	_ = c.State()
	return es.ErrConcurrency
}

func TestStateAskedBeforeAFailedCommit(t *testing.T) {
	ctx := context.Background()
	reg := bankRegistry(t)
	inner := es.NewStore(memory.NewBackend())
	a, _ := newAccount("k", reg, inner)
	_ = a.Handle(ctx, Deposit{Amount: 3})
	b, _ := newAccount("k", reg, earlyState{inner})
	b.SetRetryPolicy(es.RetryPolicy{MaxAttempts: 1})
	if err := b.Handle(ctx, Deposit{Amount: 100}); !errors.Is(err, es.ErrConcurrency) {
		t.Fatal(err)
	}
	if b.Balance != 0 || b.SequenceNumber() != 0 {
		t.Fatalf("an uncommitted effect survived: balance %d at %d, want a reset", b.Balance, b.SequenceNumber())
	}
	if err := b.Refresh(ctx); err != nil || b.Balance != 3 {
		t.Fatalf("reload after the reset: %v, balance %d", err, b.Balance)
	}
}

func TestNewCommitID(t *testing.T) {
	seen := map[string]bool{}
	prev := ""
	for i := 0; i < 1000; i++ {
		id := es.NewCommitID()
		if err := backend.ValidCommitID(id); err != nil || len(id) != 36 || id[14] != '7' || id[8] != '-' {
			t.Fatalf("%q is not a UUIDv7 commit ID: %v", id, err)
		}
		if seen[id] {
			t.Fatalf("%q generated twice", id)
		}
		if id[:8] < prev[:min(8, len(prev))] {
			t.Fatalf("IDs go back in time: %q after %q", id, prev)
		}
		seen[id], prev = true, id
	}
}

// Dispatched has hand-written dispatch methods that count their calls, as
// cmd/esgen would write them without the counters.
type Dispatched struct {
	es.AggregateBase `json:"-"`
	Balance          int64
	events, commands int
}

func (d *Dispatched) HandleDeposit(c Deposit) ([]es.Event, error) {
	return []es.Event{Deposited(c)}, nil
}
func (d *Dispatched) ReplayDeposited(e Deposited) { d.Balance += e.Amount }
func (d *Dispatched) ReplayWithdrawn(e Withdrawn) { d.Balance -= e.Amount }

func (d *Dispatched) DispatchEvent(e es.Event) bool {
	d.events++
	if e, ok := e.(*Deposited); ok {
		d.ReplayDeposited(*e)
		return true
	}
	if e, ok := e.(Deposited); ok {
		d.ReplayDeposited(e)
		return true
	}
	return false // Withdrawn: AggregateBase falls back to reflection
}

func (d *Dispatched) DispatchCommand(_ context.Context, cmd any) ([]es.Event, error) {
	d.commands++
	if c, ok := cmd.(Deposit); ok {
		return d.HandleDeposit(c)
	}
	return nil, es.ErrNoHandler
}

func TestDispatchersAreUsed(t *testing.T) {
	ctx := context.Background()
	store := es.NewStore(memory.NewBackend())
	d := &Dispatched{}
	d.Initialize("k", bankRegistry(t), store, func() any { return d })
	d.SetAggregateType("Account")
	if err := d.AutomaticWireup(d); err != nil {
		t.Fatal(err)
	}
	if err := d.Handle(ctx, Deposit{Amount: 5}); err != nil {
		t.Fatal(err)
	}
	if d.commands != 1 || d.events != 1 || d.Balance != 5 {
		t.Fatalf("commands %d events %d balance %d", d.commands, d.events, d.Balance)
	}
	w, _ := newAccount("k", bankRegistry(t), store)
	if err := w.Handle(ctx, Withdraw{Amount: 2}); err != nil {
		t.Fatal(err)
	}
	e := &Dispatched{}
	e.Initialize("k", bankRegistry(t), store, func() any { return e })
	e.SetAggregateType("Account")
	_ = e.AutomaticWireup(e)
	if err := e.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if e.events != 2 || e.Balance != 3 {
		t.Fatalf("a load dispatched %d events (want 2: one handled, one falling back), balance %d", e.events, e.Balance)
	}
}
