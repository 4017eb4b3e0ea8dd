package eventsourcing_test

import (
	"context"
	"errors"
	"iter"
	"strings"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

func bankRegistry(t testing.TB) *es.StandardEventRegistry {
	t.Helper()
	reg := es.NewStandardEventRegistry("Bank")
	if err := reg.RegisterEvent(Deposited{}, Withdrawn{}); err != nil {
		t.Fatal(err)
	}
	return reg
}

func rawAppend(t *testing.T, b es.Backend, stream es.StreamID, expected int64, typ, data string) {
	t.Helper()
	id := es.NewCommitID()
	rec := es.Record{Stream: stream, Sequence: expected + 1, EventType: typ, Data: []byte(data), Timestamp: time.Now(), CommitID: id}
	if err := b.Append(context.Background(), backend.Commit{Stream: stream, Expected: expected, ID: id, Records: []es.Record{rec}}); err != nil {
		t.Fatal(err)
	}
}

func TestUnknownEventType(t *testing.T) {
	ctx := context.Background()
	backend := memory.NewBackend()
	store := es.NewStore(backend)
	stream := es.StreamID{AggregateType: "Account", Key: "k"}
	rawAppend(t, backend, stream, 0, "Deposited", `{"Amount":5}`)
	rawAppend(t, backend, stream, 1, "Renamed", `{}`)
	rawAppend(t, backend, stream, 2, "Deposited", `{"Amount":7}`)

	a, _ := newAccount("k", bankRegistry(t), store)
	err := a.Refresh(ctx)
	var ue *es.UnknownEventTypeError
	if !errors.Is(err, es.ErrUnknownEventType) || !errors.As(err, &ue) {
		t.Fatalf("got %v, want *UnknownEventTypeError", err)
	}
	if ue.Type != "Renamed" || ue.Sequence != 2 || ue.Stream != stream {
		t.Fatalf("error names %q at %d in %v", ue.Type, ue.Sequence, ue.Stream)
	}
	if a.SequenceNumber() != 1 || a.Balance != 5 {
		t.Fatalf("state after the failed load: sequence %d balance %d, want 1 and 5", a.SequenceNumber(), a.Balance)
	}

	b, _ := newAccount("k", bankRegistry(t), store)
	b.SetSkipUnknownEvents(true)
	if err := b.Refresh(ctx); err != nil {
		t.Fatalf("skipping: %v", err)
	}
	if b.SequenceNumber() != 3 || b.Balance != 12 {
		t.Fatalf("skipping: sequence %d balance %d, want 3 and 12", b.SequenceNumber(), b.Balance)
	}
}

func TestCorruptRecord(t *testing.T) {
	ctx := context.Background()
	backend := memory.NewBackend()
	store := es.NewStore(backend)
	stream := es.StreamID{AggregateType: "Account", Key: "k"}
	rawAppend(t, backend, stream, 0, "Deposited", `{"Amount":5}`)
	rawAppend(t, backend, stream, 1, "Deposited", `{"Amount":"five"`)
	a, _ := newAccount("k", bankRegistry(t), store)
	err := a.Refresh(ctx)
	var re *es.RecordError
	if !errors.Is(err, es.ErrCorruptStream) || !errors.As(err, &re) || re.Sequence != 2 || re.Type != "Deposited" {
		t.Fatalf("got %v, want a *RecordError at sequence 2", err)
	}
	// Other streams are unaffected.
	other, _ := newAccount("other", bankRegistry(t), store)
	if err := other.Handle(ctx, Deposit{Amount: 1}); err != nil {
		t.Fatal(err)
	}
}

// gappy is a Backend that returns whatever records it is given.
type gappy struct {
	es.Backend
	recs []es.Record
}

func (g gappy) Load(context.Context, es.StreamID, int64) iter.Seq2[es.Record, error] {
	return func(yield func(es.Record, error) bool) {
		for _, r := range g.recs {
			if !yield(r, nil) {
				return
			}
		}
	}
}

func TestLoadChecksContiguity(t *testing.T) {
	ctx := context.Background()
	stream := es.StreamID{AggregateType: "Account", Key: "k"}
	rec := func(seq int64) es.Record {
		return es.Record{Stream: stream, Sequence: seq, EventType: "Deposited", Data: []byte(`{"Amount":1}`)}
	}
	other := rec(2)
	other.Stream.Key = "someone-else"
	for name, recs := range map[string][]es.Record{
		"gap":          {rec(1), rec(3)},
		"repeat":       {rec(1), rec(2), rec(2)},
		"late start":   {rec(2)},
		"other stream": {rec(1), other},
	} {
		a, _ := newAccount("k", bankRegistry(t), es.NewStore(gappy{memory.NewBackend(), recs}))
		if err := a.Refresh(ctx); !errors.Is(err, es.ErrCorruptStream) {
			t.Errorf("%s: got %v, want ErrCorruptStream", name, err)
		}
	}
}

// conflicting is an EventStore whose commits always lose. It signals the
// first commit on committed, if set.
type conflicting struct {
	es.EventStore
	committed chan struct{}
}

func (c conflicting) Commit(context.Context, es.Commit) error {
	if c.committed != nil {
		select {
		case c.committed <- struct{}{}:
		default:
		}
	}
	return es.ErrConcurrency
}

func TestRetryIsBoundedAndHonoursContext(t *testing.T) {
	reg := bankRegistry(t)
	a, _ := newAccount("k", reg, conflicting{EventStore: es.NewStore(memory.NewBackend())})
	a.SetRetryPolicy(es.RetryPolicy{MaxAttempts: 3, MinDelay: time.Microsecond, MaxDelay: time.Microsecond})
	err := a.Handle(context.Background(), Deposit{Amount: 1})
	if !errors.Is(err, es.ErrConcurrency) || !strings.Contains(err.Error(), "3 attempts") {
		t.Fatalf("got %v, want ErrConcurrency after 3 attempts", err)
	}
	if a.Balance != 0 {
		t.Fatalf("balance %d after failed commits: state kept an uncommitted effect", a.Balance)
	}

	ctx, cancel := context.WithCancel(context.Background())
	committed := make(chan struct{}, 1)
	b, _ := newAccount("k", reg, conflicting{es.NewStore(memory.NewBackend()), committed})
	b.SetRetryPolicy(es.RetryPolicy{MaxAttempts: 1000, MinDelay: time.Hour, MaxDelay: time.Hour})
	done := make(chan error, 1)
	go func() { done <- b.Handle(ctx, Deposit{Amount: 1}) }()
	<-committed // cancel while it waits to retry
	cancel()
	err = <-done
	if !errors.Is(err, es.ErrConcurrency) || !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want ErrConcurrency and context.Canceled", err)
	}

	c, _ := newAccount("k", reg, conflicting{EventStore: es.NewStore(memory.NewBackend())})
	c.SetRetryPolicy(es.RetryPolicy{MaxAttempts: 1})
	if err := c.Handle(context.Background(), Deposit{Amount: 1}); !errors.Is(err, es.ErrConcurrency) {
		t.Fatalf("no retry: %v", err)
	}
}

// restoring is an EventStore that offers a snapshot before loading.
type restoring struct {
	es.EventStore
	seq   int64
	state string
	err   error
}

func (r *restoring) Refresh(ctx context.Context, l es.Loader) error {
	if l.Sequence() < r.seq {
		r.err = l.Restore(r.seq, []byte(r.state), nil)
	}
	return r.EventStore.Refresh(ctx, l)
}

func TestRestore(t *testing.T) {
	ctx := context.Background()
	reg := bankRegistry(t)
	inner := es.NewStore(memory.NewBackend())
	writer, _ := newAccount("k", reg, inner)
	for i := 0; i < 3; i++ {
		if err := writer.Handle(ctx, Deposit{Amount: 10}); err != nil {
			t.Fatal(err)
		}
	}
	good := &restoring{EventStore: inner, seq: 2, state: `{"Balance":20}`}
	a, _ := newAccount("k", reg, good)
	if err := a.Refresh(ctx); err != nil || good.err != nil {
		t.Fatalf("refresh %v restore %v", err, good.err)
	}
	if a.Balance != 30 || a.SequenceNumber() != 3 {
		t.Fatalf("restored state %d at %d, want 30 at 3", a.Balance, a.SequenceNumber())
	}
	bad := &restoring{EventStore: inner, seq: 2, state: `{"Balance":"twenty"}`}
	b, _ := newAccount("k", reg, bad)
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(bad.err, es.ErrInvalidSnapshot) {
		t.Fatalf("bad snapshot: %v", bad.err)
	}
	if b.Balance != 30 || b.SequenceNumber() != 3 {
		t.Fatalf("after a bad snapshot: %d at %d, want a full replay to 30 at 3", b.Balance, b.SequenceNumber())
	}
}

// Limited keeps a configured limit across resets through StateResetter.
type Limited struct {
	es.AggregateBase `json:"-"`
	Limit            int64 `json:"-"`
	Total            int64
}

func (l *Limited) ResetState() { l.Total = 0 }
func (l *Limited) HandleDeposit(c Deposit) ([]es.Event, error) {
	if l.Total+c.Amount > l.Limit {
		return nil, errors.New("over the limit")
	}
	return []es.Event{Deposited(c)}, nil
}
func (l *Limited) ReplayDeposited(e Deposited) { l.Total += e.Amount }

func TestStateResetterKeepsConfiguration(t *testing.T) {
	ctx := context.Background()
	reg := bankRegistry(t)
	store := es.NewStore(memory.NewBackend())
	mk := func() *Limited {
		l := &Limited{Limit: 10}
		l.Initialize("k", reg, store, func() any { return l })
		if err := l.AutomaticWireup(l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	a, b := mk(), mk()
	_ = a.Refresh(ctx)
	calls := 0
	// b decides while a commits, so b's first commit conflicts and b resets.
	err := b.Run(ctx, func(context.Context) ([]es.Event, error) {
		if calls++; calls == 1 {
			if err := a.Handle(ctx, Deposit{Amount: 4}); err != nil {
				return nil, err
			}
		}
		return []es.Event{Deposited{Amount: 1}}, nil
	})
	if err != nil || b.Limit != 10 || b.Total != 5 {
		t.Fatalf("after a retry: err %v limit %d total %d, want limit 10 total 5", err, b.Limit, b.Total)
	}
}

func TestNotInitializedAndInvalidStreams(t *testing.T) {
	ctx := context.Background()
	var a Account
	if err := a.Handle(ctx, Deposit{Amount: 1}); !errors.Is(err, es.ErrNotInitialized) {
		t.Fatalf("uninitialized Handle: %v", err)
	}
	if err := a.Refresh(ctx); !errors.Is(err, es.ErrNotInitialized) {
		t.Fatalf("uninitialized Refresh: %v", err)
	}
	for _, key := range []string{"", "bad\x00key", strings.Repeat("k", es.MaxKeyLen+1)} {
		b, _ := newAccount(key, bankRegistry(t), es.NewStore(memory.NewBackend()))
		if err := b.Handle(ctx, Deposit{Amount: 1}); !errors.Is(err, es.ErrInvalidStream) {
			t.Errorf("key %q: got %v, want ErrInvalidStream", key, err)
		}
	}
	c, _ := newAccount("k", bankRegistry(t), es.NewStore(memory.NewBackend()))
	c.SetAggregateType("Bad/Type")
	if err := c.Refresh(ctx); !errors.Is(err, es.ErrInvalidStream) {
		t.Errorf("aggregate type with '/': %v", err)
	}
}

func TestUnregisteredEventStoresNothing(t *testing.T) {
	ctx := context.Background()
	reg := es.NewStandardEventRegistry("Bank")
	_ = reg.RegisterEvent(Deposited{}) // not Withdrawn
	store := es.NewStore(memory.NewBackend())
	a := &Account{Balance: 0}
	a.Initialize("k", reg, store, func() any { return a })
	if err := a.DefineCommandHandler(Withdraw{}, func(context.Context, any) ([]es.Event, error) {
		return []es.Event{Deposited{Amount: 1}, Withdrawn{Amount: 1}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	_ = a.DefineReplayMethod(Deposited{}, func(e es.Event) { a.Balance += e.(Deposited).Amount })
	if err := a.Handle(ctx, Withdraw{}); !errors.Is(err, es.ErrUnregisteredEvent) {
		t.Fatalf("got %v, want ErrUnregisteredEvent", err)
	}
	if a.Balance != 0 || a.SequenceNumber() != 0 {
		t.Fatalf("a rejected commit changed the state: balance %d", a.Balance)
	}
	if err := a.DefineReplayMethod(Withdrawn{}, func(es.Event) {}); !errors.Is(err, es.ErrUnregisteredEvent) {
		t.Fatalf("replay for unregistered event: %v", err)
	}
}

func TestWrapOrder(t *testing.T) {
	var calls []string
	mw := func(name string) es.Middleware {
		return func(next es.EventStore) es.EventStore {
			return recording{name: name, next: next, calls: &calls}
		}
	}
	ctx := context.Background()
	store := es.Wrap(es.NewStore(memory.NewBackend()), mw("a"), nil, mw("b"), mw("c"))
	a, _ := newAccount("k", bankRegistry(t), store)
	if err := a.Handle(ctx, Deposit{Amount: 1}); err != nil {
		t.Fatal(err)
	}
	want := "a>Refresh b>Refresh c>Refresh c<Refresh b<Refresh a<Refresh a>Commit b>Commit c>Commit c<Commit b<Commit a<Commit"
	if got := strings.Join(calls, " "); got != want {
		t.Fatalf("order:\n got  %s\n want %s", got, want)
	}
}

type recording struct {
	name  string
	next  es.EventStore
	calls *[]string
}

func (r recording) Refresh(ctx context.Context, l es.Loader) error {
	*r.calls = append(*r.calls, r.name+">Refresh")
	defer func() { *r.calls = append(*r.calls, r.name+"<Refresh") }()
	return r.next.Refresh(ctx, l)
}

func (r recording) Commit(ctx context.Context, c es.Commit) error {
	*r.calls = append(*r.calls, r.name+">Commit")
	defer func() { *r.calls = append(*r.calls, r.name+"<Commit") }()
	return r.next.Commit(ctx, c)
}

func (r recording) Close() error { return r.next.Close() }

func TestRegistry(t *testing.T) {
	type Other struct{}
	reg := es.NewStandardEventRegistry("d")
	if err := reg.RegisterEvent(&Deposited{}, Deposited{}); err != nil {
		t.Fatalf("same type twice: %v", err)
	}
	if n, ok := reg.Name(typeOf[*Deposited]()); !ok || n != "Deposited" {
		t.Fatalf("pointer name: %q %v", n, ok)
	}
	if err := reg.RegisterEventAs("Deposited", Other{}); !errors.Is(err, es.ErrDuplicateEventName) {
		t.Fatalf("one name, two types: %v", err)
	}
	if err := reg.RegisterEventAs("bank.withdrawn.v1", Withdrawn{}); err != nil {
		t.Fatal(err)
	}
	if err := reg.RegisterEventAs("withdrawn2", Withdrawn{}); !errors.Is(err, es.ErrDuplicateEventName) {
		t.Fatalf("one type, two names: %v", err)
	}
	if tt, ok := reg.Type("bank.withdrawn.v1"); !ok || tt != typeOf[Withdrawn]() {
		t.Fatalf("explicit name lookup: %v %v", tt, ok)
	}
	for _, bad := range []string{"", "has space", "ctl\x01", strings.Repeat("x", es.MaxEventNameLen+1), "\xff"} {
		if err := reg.RegisterEventAs(bad, Other{}); !errors.Is(err, es.ErrInvalidEventName) {
			t.Errorf("name %q: got %v", bad, err)
		}
	}
	if err := reg.RegisterEvent(nil); !errors.Is(err, es.ErrInvalidEventName) {
		t.Errorf("nil event: %v", err)
	}
	if err := reg.RegisterEvent(struct{ X int }{}); !errors.Is(err, es.ErrInvalidEventName) {
		t.Errorf("unnamed type: %v", err)
	}
	// All or nothing.
	if err := reg.RegisterEvent(Other{}, struct{}{}); err == nil {
		t.Fatal("batch with an unnamed type succeeded")
	}
	if _, ok := reg.Type("Other"); ok {
		t.Fatal("a failed batch registered part of itself")
	}
}

// Bump is a command whose handler changes it.
type Bump struct{ N int64 }

type Bumper struct {
	es.AggregateBase `json:"-"`
	Total            int64
	PanicAt          int64 `json:"-"`
}

func (b *Bumper) HandleBump(c *Bump) ([]es.Event, error) {
	c.N++ // a handler that mutates its command
	return []es.Event{Deposited{Amount: c.N}, Deposited{Amount: 1}}, nil
}

func (b *Bumper) ReplayDeposited(e Deposited) {
	if b.PanicAt != 0 && b.Total+e.Amount >= b.PanicAt {
		panic("replay failed")
	}
	b.Total += e.Amount
}

func (b *Bumper) ResetState() { b.Total = 0 }

func newBumper(t *testing.T, store es.EventStore) *Bumper {
	t.Helper()
	b := &Bumper{}
	b.Initialize("k", bankRegistry(t), store, func() any { return b })
	if err := b.AutomaticWireup(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRetryGetsAFreshCommand(t *testing.T) {
	ctx := context.Background()
	store := &conflictOnce{EventStore: es.NewStore(memory.NewBackend())}
	b := newBumper(t, store)
	if err := b.Handle(ctx, Bump{N: 0}); err != nil {
		t.Fatal(err)
	}
	if b.Total != 2 {
		t.Fatalf("total %d after one retried command, want 2: the retry saw the failed attempt's change to the command", b.Total)
	}
}

// conflictOnce fails the first commit with a conflict.
type conflictOnce struct {
	es.EventStore
	failed bool
}

func (o *conflictOnce) Commit(ctx context.Context, c es.Commit) error {
	if !o.failed {
		o.failed = true
		return es.ErrConcurrency
	}
	return o.EventStore.Commit(ctx, c)
}

func TestPanickingReplayLeavesNoPartialState(t *testing.T) {
	ctx := context.Background()
	store := es.NewStore(memory.NewBackend())
	b := newBumper(t, store)
	b.PanicAt = 2 // the second event of the command panics
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the replay's panic was swallowed")
			}
		}()
		_ = b.Handle(ctx, Bump{N: 0})
	}()
	if b.Total != 0 || b.SequenceNumber() != 0 {
		t.Fatalf("after a panic in a replay: total %d sequence %d, want a reset to 0", b.Total, b.SequenceNumber())
	}
	// Events are applied once the store accepted them: the panicking
	// command's two events are stored, and the next command reloads them.
	b.PanicAt = 0
	if err := b.Handle(ctx, Bump{N: 0}); err != nil || b.Total != 4 || b.SequenceNumber() != 4 {
		t.Fatalf("instance unusable after a panic: %v, total %d at %d, want 4 at 4", err, b.Total, b.SequenceNumber())
	}
}
