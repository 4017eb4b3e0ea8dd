package eventsourcing_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

// Capped is configured by its factory: the cap lives in an unexported
// field that no load restores.
type CappedAccount struct {
	es.AggregateBase `json:"-"`
	Balance          int64
	cap              int64
}

var errOverCap = errors.New("over the cap")

func (c *CappedAccount) HandleDeposit(d Deposit) ([]es.Event, error) {
	if c.Balance+d.Amount > c.cap {
		return nil, errOverCap
	}
	return []es.Event{Deposited(d)}, nil
}
func (c *CappedAccount) ReplayDeposited(e Deposited) { c.Balance += e.Amount }
func (c *CappedAccount) ReplayWithdrawn(e Withdrawn) { c.Balance -= e.Amount }

func cappedFactory(cap int64, calls *atomic.Int64) es.Factory[*CappedAccount] {
	return func(key string, registry es.EventRegistry, store es.EventStore) (*CappedAccount, error) {
		calls.Add(1)
		c := &CappedAccount{cap: cap}
		c.Initialize(key, registry, store, func() any { return c })
		c.SetAggregateType("Account")
		c.SetRetryPolicy(es.RetryPolicy{MaxAttempts: 100, MinDelay: 50 * time.Microsecond, MaxDelay: time.Millisecond})
		return c, c.AutomaticWireup(c)
	}
}

func TestRepositoryHandleAndLoad(t *testing.T) {
	ctx := context.Background()
	var calls atomic.Int64
	repo := es.NewRepository(bankRegistry(t), es.NewStore(memory.NewBackend()), cappedFactory(100, &calls))

	if a, err := repo.Load(ctx, "alice"); !errors.Is(err, es.ErrNotFound) || a != nil {
		t.Fatalf("Load of a new key: %v, %v; want ErrNotFound and nil", a, err)
	} else if !strings.Contains(err.Error(), "Account/alice") {
		t.Fatalf("the error does not name the stream: %v", err)
	}
	a, err := repo.Handle(ctx, "alice", Deposit{Amount: 60})
	if err != nil || a.Balance != 60 || a.SequenceNumber() != 1 || a.Key() != "alice" {
		t.Fatalf("Handle: %v, balance %d at %d", err, a.Balance, a.SequenceNumber())
	}
	// The cap comes from the factory on every call, never from a load.
	if a, err := repo.Handle(ctx, "alice", Deposit{Amount: 50}); !errors.Is(err, errOverCap) || a != nil {
		t.Fatalf("over the cap: %v, %v", a, err)
	}
	if a, err := repo.Handle(ctx, "alice", Deposit{Amount: 40}); err != nil || a.Balance != 100 {
		t.Fatalf("up to the cap: %v, %v", a, err)
	}
	b, err := repo.Load(ctx, "alice")
	if err != nil || b.Balance != 100 || b.SequenceNumber() != 2 || b.cap != 100 {
		t.Fatalf("Load: %v, balance %d at %d, cap %d", err, b.Balance, b.SequenceNumber(), b.cap)
	}
	if b == a {
		t.Fatal("two calls shared an instance")
	}
	if n := calls.Load(); n != 5 {
		t.Fatalf("the factory ran %d times for 5 calls", n)
	}
	if _, err := repo.Handle(ctx, "alice", struct{}{}); !errors.Is(err, es.ErrNoHandler) {
		t.Fatalf("a command without handler: %v", err)
	}
}

func TestRepositoryHandleExisting(t *testing.T) {
	ctx := context.Background()
	var calls atomic.Int64
	store := &countingCommits{EventStore: es.NewStore(memory.NewBackend())}
	repo := es.NewRepository(bankRegistry(t), es.EventStore(store), cappedFactory(100, &calls))
	if a, err := repo.HandleExisting(ctx, "bob", Deposit{Amount: 1}); !errors.Is(err, es.ErrNotFound) || a != nil {
		t.Fatalf("HandleExisting on a new key: %v, %v", a, err)
	}
	if store.commits.Load() != 0 {
		t.Fatal("HandleExisting on a new key committed")
	}
	if _, err := repo.Load(ctx, "bob"); !errors.Is(err, es.ErrNotFound) {
		t.Fatalf("the refused command created the stream: %v", err)
	}
	if _, err := repo.Handle(ctx, "bob", Deposit{Amount: 1}); err != nil {
		t.Fatal(err)
	}
	a, err := repo.HandleExisting(ctx, "bob", Deposit{Amount: 2})
	if err != nil || a.Balance != 3 || a.SequenceNumber() != 2 {
		t.Fatalf("HandleExisting on an existing key: %v, %+v", err, a)
	}
	if _, err := repo.HandleExisting(ctx, "bob", Deposit{Amount: 1000}); !errors.Is(err, errOverCap) {
		t.Fatalf("the handler's error: %v", err)
	}
	if _, err := repo.HandleExisting(ctx, "bob", "not a command"); !errors.Is(err, es.ErrNoHandler) {
		t.Fatalf("a command without handler: %v", err)
	}
	if _, err := repo.HandleExisting(ctx, "bob", nil); !errors.Is(err, es.ErrInvalidCommand) {
		t.Fatalf("a nil command: %v", err)
	}
}

type countingCommits struct {
	es.EventStore
	commits atomic.Int64
}

func (c *countingCommits) Commit(ctx context.Context, cm es.Commit) error {
	c.commits.Add(1)
	return c.EventStore.Commit(ctx, cm)
}

// A command ID on the context makes a repeated call apply once; a retry
// policy on the context replaces the factory's for that call.
func TestRepositoryContext(t *testing.T) {
	ctx := context.Background()
	var calls atomic.Int64
	repo := es.NewRepository(bankRegistry(t), es.NewStore(memory.NewBackend()), cappedFactory(100, &calls))
	cmd := es.WithCommandID(ctx, "deposit-1")
	for i := 0; i < 3; i++ {
		a, err := repo.Handle(cmd, "carol", Deposit{Amount: 10})
		if err != nil || a.Balance != 10 || a.SequenceNumber() != 1 {
			t.Fatalf("repeat %d: %v, balance %d at %d", i, err, a.Balance, a.SequenceNumber())
		}
	}
	if a, err := repo.HandleExisting(cmd, "carol", Deposit{Amount: 10}); err != nil || a.Balance != 10 {
		t.Fatalf("repeat through HandleExisting: %v, %+v", err, a)
	}

	conflicts := &countingCommits{EventStore: conflicting{EventStore: es.NewStore(memory.NewBackend())}}
	repo = es.NewRepository(bankRegistry(t), es.EventStore(conflicts), cappedFactory(100, &calls))
	fast := es.RetryPolicy{MaxAttempts: 3, MinDelay: -1}
	_, err := repo.Handle(es.WithRetryPolicy(ctx, fast), "dave", Deposit{Amount: 1})
	if !errors.Is(err, es.ErrConcurrency) || conflicts.commits.Load() != 3 {
		t.Fatalf("with the context's policy: %v after %d commits, want ErrConcurrency after 3", err, conflicts.commits.Load())
	}
	conflicts.commits.Store(0)
	_, err = repo.HandleExisting(es.WithRetryPolicy(ctx, fast), "dave", Deposit{Amount: 1})
	if !errors.Is(err, es.ErrNotFound) || conflicts.commits.Load() != 0 {
		t.Fatalf("HandleExisting on a new key: %v after %d commits", err, conflicts.commits.Load())
	}
	if p, ok := es.RetryPolicyFrom(es.WithRetryPolicy(ctx, fast)); !ok || p != fast {
		t.Fatalf("RetryPolicyFrom: %v %v", p, ok)
	}
	if _, ok := es.RetryPolicyFrom(ctx); ok {
		t.Fatal("RetryPolicyFrom of a bare context")
	}
	// Without one, the factory's policy (100 attempts) applies.
	_, err = repo.Handle(ctx, "dave", Deposit{Amount: 1})
	if !errors.Is(err, es.ErrConcurrency) || conflicts.commits.Load() != 100 {
		t.Fatalf("with the factory's policy: %v after %d commits, want 100", err, conflicts.commits.Load())
	}
}

func TestRepositoryMisuse(t *testing.T) {
	ctx := context.Background()
	reg, store := bankRegistry(t), es.NewStore(memory.NewBackend())
	var calls atomic.Int64
	for name, repo := range map[string]*es.Repository[*CappedAccount]{
		"nil registry": es.NewRepository(nil, store, cappedFactory(1, &calls)),
		"nil store":    es.NewRepository(reg, nil, cappedFactory(1, &calls)),
		"nil factory":  es.NewRepository[*CappedAccount](reg, store, nil),
		"nil instance": es.NewRepository(reg, store, func(string, es.EventRegistry, es.EventStore) (*CappedAccount, error) {
			return nil, nil
		}),
		"wrong key": es.NewRepository(reg, store, func(key string, r es.EventRegistry, s es.EventStore) (*CappedAccount, error) {
			return cappedFactory(1, &calls)(key+"!", r, s)
		}),
	} {
		for op, call := range map[string]func() (*CappedAccount, error){
			"Handle":         func() (*CappedAccount, error) { return repo.Handle(ctx, "k", Deposit{Amount: 1}) },
			"HandleExisting": func() (*CappedAccount, error) { return repo.HandleExisting(ctx, "k", Deposit{Amount: 1}) },
			"Load":           func() (*CappedAccount, error) { return repo.Load(ctx, "k") },
			"New":            func() (*CappedAccount, error) { return repo.New(ctx, "k") },
		} {
			if a, err := call(); !errors.Is(err, es.ErrNotInitialized) || a != nil {
				t.Errorf("%s, %s: got %v, %v; want ErrNotInitialized", name, op, a, err)
			}
		}
	}
	boom := errors.New("boom")
	repo := es.NewRepository(reg, store, func(string, es.EventRegistry, es.EventStore) (*CappedAccount, error) { return nil, boom })
	if _, err := repo.Handle(ctx, "k", Deposit{Amount: 1}); !errors.Is(err, boom) {
		t.Fatalf("the factory's error: %v", err)
	}
	// A wire-up error from the factory reaches the caller.
	type broken struct {
		es.AggregateBase `json:"-"`
	}
	bad := es.NewRepository(reg, store, func(key string, r es.EventRegistry, s es.EventStore) (*broken, error) {
		b := &broken{}
		b.Initialize(key, r, s, func() any { return b })
		return b, b.AutomaticWireup(&broken{}) // not the aggregate itself
	})
	if _, err := bad.Handle(ctx, "k", Deposit{}); !errors.Is(err, es.ErrInvalidWireup) {
		t.Fatalf("a wire-up error: %v", err)
	}
}

// Many goroutines sharing one Repository and one key: every acknowledged
// command is stored once.
func TestRepositoryConcurrentCallers(t *testing.T) {
	ctx := context.Background()
	var calls atomic.Int64
	repo := es.NewRepository(bankRegistry(t), es.NewStore(memory.NewBackend()), cappedFactory(1<<40, &calls))
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				id := fmt.Sprintf("w%d-%d", w, i)
				// Each command twice, the second time as a repeat.
				for range 2 {
					if _, err := repo.Handle(es.WithCommandID(ctx, id), "shared", Deposit{Amount: 1}); err != nil {
						errs <- err
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	a, err := repo.Load(ctx, "shared")
	if err != nil || a.Balance != writers*each || a.SequenceNumber() != writers*each {
		t.Fatalf("after %d commands: %v, balance %d at %d", writers*each, err, a.Balance, a.SequenceNumber())
	}
}

// Aggregates wired without reflection work the same way.
func TestRepositoryDefineWiredAggregate(t *testing.T) {
	type Tally struct {
		es.AggregateBase `json:"-"`
		Total            int64
	}
	factory := func(key string, r es.EventRegistry, s es.EventStore) (*Tally, error) {
		t := &Tally{}
		t.Initialize(key, r, s, func() any { return t })
		if err := t.DefineReplayMethod(Deposited{}, func(e es.Event) { t.Total += e.(Deposited).Amount }); err != nil {
			return nil, err
		}
		t.IgnoreEvents(Withdrawn{})
		return t, t.DefineCommandHandler(Deposit{}, func(_ context.Context, cmd any) ([]es.Event, error) {
			return []es.Event{Deposited(cmd.(Deposit))}, nil
		})
	}
	repo := es.NewRepository(bankRegistry(t), es.NewStore(memory.NewBackend()), factory)
	ctx := context.Background()
	if _, err := repo.HandleExisting(ctx, "t", Deposit{Amount: 2}); !errors.Is(err, es.ErrNotFound) {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := repo.Handle(ctx, "t", Deposit{Amount: 2}); err != nil {
			t.Fatal(err)
		}
	}
	if a, err := repo.HandleExisting(ctx, "t", Deposit{Amount: 2}); err != nil || a.Total != 8 || a.AggregateType() != "Tally" {
		t.Fatalf("%v %+v", err, a)
	}
}
