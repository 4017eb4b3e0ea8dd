package eventsourcing_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

// Do with an instance cache builds one instance per key, loads only what
// other writers stored since its last use, and evicts the least recently
// used beyond its size.
func TestRepositoryDoCache(t *testing.T) {
	ctx := context.Background()
	var calls atomic.Int64
	store := es.NewStore(memory.NewBackend())
	reg := bankRegistry(t)
	repo := es.NewRepository(reg, store, cappedFactory(1<<40, &calls), es.WithInstanceCache(2))
	other := es.NewRepository(reg, store, cappedFactory(1<<40, &calls)) // another process

	deposit := func(key string, n int64) *CappedAccount {
		t.Helper()
		var got *CappedAccount
		err := repo.Do(ctx, key, func(ctx context.Context, a *CappedAccount) error {
			got = a
			return a.Handle(ctx, Deposit{Amount: n})
		})
		if err != nil {
			t.Fatalf("Do on %s: %v", key, err)
		}
		return got
	}
	first := deposit("a", 1)
	if second := deposit("a", 2); second != first || second.Balance != 3 {
		t.Fatalf("the second call on a key got %p (first %p), balance %d", second, first, second.Balance)
	}
	if n := calls.Swap(0); n != 1 {
		t.Fatalf("the factory ran %d times for two calls on one key", n)
	}

	// Another writer's events are loaded before fn runs.
	if _, err := other.Handle(ctx, "a", Deposit{Amount: 10}); err != nil {
		t.Fatal(err)
	}
	calls.Store(0)
	err := repo.Do(ctx, "a", func(ctx context.Context, a *CappedAccount) error {
		if a.Balance != 13 || a.SequenceNumber() != 3 {
			t.Errorf("fn saw balance %d at %d, want 13 at 3", a.Balance, a.SequenceNumber())
		}
		return nil
	})
	if err != nil || calls.Load() != 0 {
		t.Fatalf("Do after another writer: %v, %d factory calls", err, calls.Load())
	}

	// b and c push a out of a cache of two.
	deposit("b", 1)
	deposit("c", 1)
	calls.Store(0)
	if a := deposit("a", 1); a == first || a.Balance != 14 {
		t.Fatalf("after eviction: same instance %v, balance %d", a == first, a.Balance)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("the factory ran %d times for an evicted key", n)
	}

	// fn's error is returned and the instance kept, consistent.
	errDomain := errors.New("refused")
	if err := repo.Do(ctx, "a", func(context.Context, *CappedAccount) error { return errDomain }); err != errDomain {
		t.Fatalf("fn's error: %v", err)
	}
}

// Calls for one key take turns on its instance: fn never runs twice at
// once, and no command loses a conflict to another call in the process.
func TestRepositoryDoTakesTurns(t *testing.T) {
	ctx := context.Background()
	var calls atomic.Int64
	store := &countingCommits{EventStore: es.NewStore(memory.NewBackend())}
	repo := es.NewRepository(bankRegistry(t), es.EventStore(store), cappedFactory(1<<40, &calls), es.WithInstanceCache(16))
	const writers, each = 8, 25
	var inside atomic.Int32
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				err := repo.Do(ctx, "shared", func(ctx context.Context, a *CappedAccount) error {
					if inside.Add(1) != 1 {
						t.Error("two calls used the instance at once")
					}
					defer inside.Add(-1)
					return a.Handle(ctx, Deposit{Amount: 1})
				})
				if err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if n := store.commits.Load(); n != writers*each {
		t.Fatalf("%d commits for %d commands: calls raced through the store", n, writers*each)
	}
	a, err := repo.Load(ctx, "shared")
	if err != nil || a.Balance != writers*each {
		t.Fatalf("after %d commands: %v, balance %d", writers*each, err, a.Balance)
	}
	if calls.Load() != 2 { // the cached instance and Load's
		t.Fatalf("the factory ran %d times", calls.Load())
	}
}

// A panic in fn drops the instance; callers waiting for it get a new one.
func TestRepositoryDoPanic(t *testing.T) {
	ctx := context.Background()
	var calls atomic.Int64
	repo := es.NewRepository(bankRegistry(t), es.NewStore(memory.NewBackend()), cappedFactory(1<<40, &calls), es.WithInstanceCache(4))
	var first *CappedAccount
	if err := repo.Do(ctx, "p", func(ctx context.Context, a *CappedAccount) error {
		first = a
		return a.Handle(ctx, Deposit{Amount: 5})
	}); err != nil {
		t.Fatal(err)
	}

	holding, waiting := make(chan struct{}), make(chan error, 1)
	go func() {
		defer func() { recover() }()
		_ = repo.Do(ctx, "p", func(_ context.Context, a *CappedAccount) error {
			close(holding)
			<-waiting      // released once the other caller waits (or has given up)
			a.Balance = -1 // a half-done change the panic leaves behind
			panic("boom")
		})
	}()
	<-holding
	var second *CappedAccount
	done := make(chan error)
	go func() {
		done <- repo.Do(ctx, "p", func(_ context.Context, a *CappedAccount) error {
			second = a
			return nil
		})
	}()
	waiting <- nil
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if second == first || second.Balance != 5 {
		t.Fatalf("after a panic: same instance %v, balance %d", second == first, second.Balance)
	}
}

// A caller waiting for a busy instance gives up with its context; a
// Factory error is returned and not kept.
func TestRepositoryDoWaitAndFactoryError(t *testing.T) {
	ctx := context.Background()
	var calls atomic.Int64
	repo := es.NewRepository(bankRegistry(t), es.NewStore(memory.NewBackend()), cappedFactory(1<<40, &calls), es.WithInstanceCache(4))
	holding, release := make(chan struct{}), make(chan struct{})
	go func() {
		_ = repo.Do(ctx, "w", func(context.Context, *CappedAccount) error {
			close(holding)
			<-release
			return nil
		})
	}()
	<-holding
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	ran := false
	if err := repo.Do(cctx, "w", func(context.Context, *CappedAccount) error { ran = true; return nil }); !errors.Is(err, context.Canceled) || ran {
		t.Fatalf("a cancelled wait: %v, fn ran %v", err, ran)
	}
	close(release)
	if err := repo.Do(ctx, "w", func(context.Context, *CappedAccount) error { return nil }); err != nil {
		t.Fatalf("after the holder returned: %v", err)
	}

	errFactory := errors.New("no such tenant")
	fail := true
	flaky := es.NewRepository(bankRegistry(t), es.NewStore(memory.NewBackend()),
		func(key string, r es.EventRegistry, s es.EventStore) (*CappedAccount, error) {
			if fail {
				return nil, errFactory
			}
			return cappedFactory(10, &calls)(key, r, s)
		}, es.WithInstanceCache(4))
	if err := flaky.Do(ctx, "k", func(context.Context, *CappedAccount) error { return nil }); !errors.Is(err, errFactory) {
		t.Fatalf("a factory error: %v", err)
	}
	fail = false
	if err := flaky.Do(ctx, "k", func(context.Context, *CappedAccount) error { return nil }); err != nil {
		t.Fatalf("the factory error was kept: %v", err)
	}
}

// interloper is a store whose next commit, when armed, is preceded by
// another process's.
type interloper struct {
	es.EventStore
	armed bool
	other *es.Repository[*CappedAccount]
}

func (s *interloper) Commit(ctx context.Context, c es.Commit) error {
	if s.armed {
		s.armed = false
		if _, err := s.other.Handle(context.Background(), c.Stream.Key, Deposit{Amount: 1}); err != nil {
			return err
		}
	}
	return s.EventStore.Commit(ctx, c)
}

// A retry policy on the context applies to that call only.
func TestRepositoryDoRetryPolicy(t *testing.T) {
	ctx := context.Background()
	var calls atomic.Int64
	reg := bankRegistry(t)
	inner := es.NewStore(memory.NewBackend())
	store := &interloper{EventStore: inner, other: es.NewRepository(reg, inner, cappedFactory(1<<40, &calls))}
	repo := es.NewRepository(reg, es.EventStore(store), cappedFactory(1<<40, &calls), es.WithInstanceCache(4))
	racing := func(ctx context.Context, a *CappedAccount) error {
		store.armed = true
		return a.Handle(ctx, Deposit{Amount: 1})
	}
	once := es.WithRetryPolicy(ctx, es.RetryPolicy{MaxAttempts: 1})
	if err := repo.Do(once, "r", racing); !errors.Is(err, es.ErrConcurrency) {
		t.Fatalf("one attempt under the context's policy: %v", err)
	}
	if err := repo.Do(ctx, "r", racing); err != nil {
		t.Fatalf("the factory's policy after a call with its own: %v", err)
	}
	if err := repo.Do(ctx, "r", func(_ context.Context, a *CappedAccount) error {
		if a.Balance != 3 {
			t.Errorf("balance %d, want 3", a.Balance)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// Without a cache Do builds a fresh instance per call.
func TestRepositoryDoWithoutCache(t *testing.T) {
	ctx := context.Background()
	var calls atomic.Int64
	repo := es.NewRepository(bankRegistry(t), es.NewStore(memory.NewBackend()), cappedFactory(100, &calls))
	var seen []*CappedAccount
	for range 2 {
		if err := repo.Do(ctx, "n", func(ctx context.Context, a *CappedAccount) error {
			seen = append(seen, a)
			return a.Handle(ctx, Deposit{Amount: 1})
		}); err != nil {
			t.Fatal(err)
		}
	}
	if seen[0] == seen[1] || seen[1].Balance != 2 || calls.Load() != 2 {
		t.Fatalf("without a cache: shared %v, balance %d, %d factory calls", seen[0] == seen[1], seen[1].Balance, calls.Load())
	}
}

// countingRefreshes counts the loads that reach the store.
type countingRefreshes struct {
	es.EventStore
	refreshes atomic.Int64
}

func (c *countingRefreshes) Refresh(ctx context.Context, l es.Loader) error {
	c.refreshes.Add(1)
	return c.EventStore.Refresh(ctx, l)
}

// The first command fn runs decides on the state Do loaded: one load per
// call, with or without a cache. A command with another command ID loads
// again, so that its repeat is looked for.
func TestRepositoryDoLoadsOnce(t *testing.T) {
	ctx := context.Background()
	for _, opts := range [][]es.RepositoryOption{nil, {es.WithInstanceCache(8)}} {
		var calls atomic.Int64
		store := &countingRefreshes{EventStore: es.NewStore(memory.NewBackend())}
		repo := es.NewRepository(bankRegistry(t), es.EventStore(store), cappedFactory(1<<40, &calls), opts...)
		for i := range 3 {
			err := repo.Do(es.WithCommandID(ctx, fmt.Sprint("c", i)), "once", func(ctx context.Context, a *CappedAccount) error {
				return a.Handle(ctx, Deposit{Amount: 1})
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if n := store.refreshes.Load(); n != 3 {
			t.Fatalf("cache %v: %d loads for 3 calls", opts != nil, n)
		}
		store.refreshes.Store(0)
		err := repo.Do(ctx, "once", func(ctx context.Context, a *CappedAccount) error {
			if err := a.Handle(es.WithCommandID(ctx, "other"), Deposit{Amount: 1}); err != nil {
				return err
			}
			return a.Handle(ctx, Deposit{Amount: 1}) // the second command loads
		})
		if err != nil {
			t.Fatal(err)
		}
		if n := store.refreshes.Load(); n != 3 {
			t.Fatalf("cache %v: %d loads for a call with two commands, one under another ID", opts != nil, n)
		}
	}
}

// A repeated command ID is recognised however far back its commit is when
// Do loads the whole stream, beyond the idempotency window.
func TestRepositoryDoRecognisesOldRepeat(t *testing.T) {
	ctx := context.Background()
	store := &countingCommits{EventStore: es.NewStore(memory.NewBackend())}
	var calls atomic.Int64
	small := func(key string, r es.EventRegistry, s es.EventStore) (*CappedAccount, error) {
		a, err := cappedFactory(1<<40, &calls)(key, r, s)
		if err == nil {
			a.SetIdempotencyWindow(2)
		}
		return a, err
	}
	repo := es.NewRepository(bankRegistry(t), es.EventStore(store), small)
	deposit := func(id string) error {
		return repo.Do(es.WithCommandID(ctx, id), "old", func(ctx context.Context, a *CappedAccount) error {
			return a.Handle(ctx, Deposit{Amount: 1})
		})
	}
	for _, id := range []string{"first", "a", "b", "c", "first"} {
		if err := deposit(id); err != nil {
			t.Fatal(err)
		}
	}
	if n := store.commits.Load(); n != 4 {
		t.Fatalf("%d commits for 4 distinct command IDs", n)
	}
}

// A misconfigured Repository fails Do with ErrNotInitialized, cache or not,
// and keeps nothing.
func TestRepositoryDoMisuse(t *testing.T) {
	var calls atomic.Int64
	for _, opts := range [][]es.RepositoryOption{nil, {es.WithInstanceCache(4)}} {
		repo := es.NewRepository(nil, es.NewStore(memory.NewBackend()), cappedFactory(1, &calls), opts...)
		for range 2 {
			err := repo.Do(context.Background(), "k", func(context.Context, *CappedAccount) error { return nil })
			if !errors.Is(err, es.ErrNotInitialized) {
				t.Fatalf("cache %v: Do without a registry: %v", opts != nil, err)
			}
		}
	}
	if calls.Load() != 0 {
		t.Fatalf("the factory ran %d times without a registry", calls.Load())
	}
}
