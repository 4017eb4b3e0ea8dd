package eventsourcing_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

// Events: what happened to an account.
type Deposited struct{ Amount int64 }
type Withdrawn struct{ Amount int64 }

// Commands: what a caller asks for.
type Deposit struct{ Amount int64 }
type Withdraw struct{ Amount int64 }

var ErrInsufficientFunds = errors.New("insufficient funds")

// Account is an event-sourced aggregate.
type Account struct {
	es.AggregateBase `json:"-"`
	Balance          int64
}

func (a *Account) HandleDeposit(c Deposit) ([]es.Event, error) {
	if c.Amount <= 0 {
		return nil, fmt.Errorf("deposit of %d: amount must be positive", c.Amount)
	}
	return []es.Event{Deposited(c)}, nil
}

func (a *Account) HandleWithdraw(ctx context.Context, c Withdraw) ([]es.Event, error) {
	if c.Amount > a.Balance {
		return nil, ErrInsufficientFunds
	}
	return []es.Event{Withdrawn(c)}, nil
}

func (a *Account) ReplayDeposited(e Deposited)  { a.Balance += e.Amount }
func (a *Account) ReplayWithdrawn(e *Withdrawn) { a.Balance -= e.Amount }

func newAccount(key string, registry es.EventRegistry, store es.EventStore) (*Account, error) {
	a := &Account{}
	a.Initialize(key, registry, store, func() any { return a })
	return a, a.AutomaticWireup(a)
}

// The main path: register events, wire an aggregate, handle commands, and
// read the state back from a fresh instance.
func Example() {
	ctx := context.Background()
	registry := es.NewStandardEventRegistry("Bank")
	if err := registry.RegisterEvent(Deposited{}, Withdrawn{}); err != nil {
		panic(err)
	}
	store := es.NewStore(memory.NewBackend())
	defer store.Close()

	acct, err := newAccount("alice", registry, store)
	if err != nil {
		panic(err)
	}
	fmt.Println(acct.Handle(ctx, Deposit{Amount: 100}))
	fmt.Println(acct.Handle(ctx, &Withdraw{Amount: 30}))
	err = acct.Handle(ctx, Withdraw{Amount: 500})
	fmt.Println(errors.Is(err, ErrInsufficientFunds))

	again, _ := newAccount("alice", registry, store)
	if err := again.Refresh(ctx); err != nil {
		panic(err)
	}
	fmt.Println(again.AggregateType(), again.Key(), again.Balance, again.SequenceNumber())
	// Output:
	// <nil>
	// <nil>
	// true
	// Account alice 70 2
}

// Run gives a consistent read, and commits only the events fn returns.
func ExampleAggregateBase_Run() {
	ctx := context.Background()
	registry := es.NewStandardEventRegistry("Bank")
	_ = registry.RegisterEvent(Deposited{}, Withdrawn{})
	store := es.NewStore(memory.NewBackend())
	acct, _ := newAccount("bob", registry, store)
	_ = acct.Handle(ctx, Deposit{Amount: 5})

	// A read: nothing is written.
	_ = acct.Run(ctx, func(context.Context) ([]es.Event, error) {
		fmt.Println("balance", acct.Balance)
		return nil, nil
	})
	// A read-then-write, retried from fresh state on conflict.
	_ = acct.Run(ctx, func(context.Context) ([]es.Event, error) {
		return []es.Event{Deposited{Amount: acct.Balance}}, nil // double it
	})
	fmt.Println("balance", acct.Balance, "sequence", acct.SequenceNumber())
	// Output:
	// balance 5
	// balance 10 sequence 2
}

// Without reflection: define replay functions and command handlers by hand.
func ExampleAggregateBase_DefineReplayMethod() {
	ctx := context.Background()
	registry := es.NewStandardEventRegistry("Bank")
	_ = registry.RegisterEvent(Deposited{})

	type Wallet struct {
		es.AggregateBase `json:"-"`
		Total            int64
	}
	w := &Wallet{}
	w.Initialize("carol", registry, es.NewStore(memory.NewBackend()), func() any { return w })
	_ = w.DefineReplayMethod(Deposited{}, func(e es.Event) { w.Total += e.(Deposited).Amount })
	_ = w.DefineCommandHandler(Deposit{}, func(_ context.Context, cmd any) ([]es.Event, error) {
		return []es.Event{Deposited{Amount: cmd.(Deposit).Amount}}, nil
	})
	fmt.Println(w.Handle(ctx, Deposit{Amount: 7}), w.Total, w.AggregateType())
	// Output: <nil> 7 Wallet
}

// Metadata on the context is stored with every event of the commit.
func ExampleWithCorrelationID() {
	ctx := es.WithCorrelationID(context.Background(), "req-123")
	ctx = es.WithMetadata(ctx, "user", "alice")
	fmt.Println(es.MetadataFrom(ctx))
	// Output: map[correlation_id:req-123 user:alice]
}

// Wrap composes middleware; the first one listed sees each call first.
func ExampleWrap() {
	trace := func(name string) es.Middleware {
		return func(next es.EventStore) es.EventStore {
			return tracer{name: name, next: next}
		}
	}
	store := es.Wrap(es.NewStore(memory.NewBackend()), trace("outer"), trace("inner"))
	_ = store.Close()
	// Output:
	// outer: Close
	// inner: Close
}

type tracer struct {
	name string
	next es.EventStore
}

func (t tracer) Refresh(ctx context.Context, l es.Loader) error {
	fmt.Println(t.name + ": Refresh")
	return t.next.Refresh(ctx, l)
}

func (t tracer) Commit(ctx context.Context, c es.Commit) error {
	fmt.Println(t.name + ": Commit")
	return t.next.Commit(ctx, c)
}

func (t tracer) Close() error {
	fmt.Println(t.name + ": Close")
	return t.next.Close()
}

// RetryPolicy.Wait is the back-off Handle uses between attempts, for a
// retry loop of one's own: here, a call that fails twice before it
// succeeds.
func ExampleRetryPolicy_Wait() {
	ctx := context.Background()
	policy := es.RetryPolicy{MaxAttempts: 5, MinDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond}
	calls := 0
	flaky := func() error {
		if calls++; calls < 3 {
			return errors.New("busy")
		}
		return nil
	}
	for attempt := 1; ; attempt++ {
		err := flaky()
		if err == nil || attempt == policy.MaxAttempts {
			fmt.Println("after", attempt, "attempts:", err)
			break
		}
		if err := policy.Wait(ctx, attempt); err != nil {
			fmt.Println(err)
			break
		}
	}
	// Output: after 3 attempts: <nil>
}

// A Kind wires the aggregate type once and binds each new instance with no
// allocation beyond the aggregate itself: the way to make many instances.
func ExampleKind() {
	ctx := context.Background()
	registry := es.NewStandardEventRegistry("Bank")
	if err := registry.RegisterEvent(Deposited{}, Withdrawn{}); err != nil {
		panic(err)
	}
	store := es.NewStore(memory.NewBackend())
	accounts, err := es.NewKind[*Account](registry, store)
	if err != nil {
		panic(err)
	}
	for _, amount := range []int64{10, 5} {
		a := &Account{} // a new instance per command, as a request handler would make
		if err := accounts.Bind(a, "alice"); err != nil {
			panic(err)
		}
		if err := a.Handle(ctx, Deposit{Amount: amount}); err != nil {
			panic(err)
		}
		fmt.Println(a.StreamID(), a.Balance, a.SequenceNumber())
	}
	// Output:
	// Account/alice 10 1
	// Account/alice 15 2
}
