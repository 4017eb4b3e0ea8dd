package eventsourcing_test

import (
	"context"
	"errors"
	"fmt"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

// A Repository turns the load-then-handle of every request handler into
// one call. newAccount is the aggregate's constructor (a Factory): it is
// also what the aggregate's tests use.
func ExampleRepository() {
	ctx := context.Background()
	registry := es.NewStandardEventRegistry("Bank")
	if err := registry.RegisterEvent(Deposited{}, Withdrawn{}); err != nil {
		panic(err)
	}
	accounts := es.NewRepository(registry, es.NewStore(memory.NewBackend()), newAccount)

	_, err := accounts.Load(ctx, "alice")
	fmt.Println(errors.Is(err, es.ErrNotFound))

	acct, err := accounts.Handle(ctx, "alice", Deposit{Amount: 100})
	fmt.Println(acct.Balance, err)

	// A command ID makes a repeated request apply once.
	req := es.WithCommandID(ctx, "withdrawal-42")
	for range 2 {
		acct, err = accounts.Handle(req, "alice", Withdraw{Amount: 30})
		fmt.Println(acct.Balance, acct.SequenceNumber(), err)
	}

	_, err = accounts.HandleExisting(ctx, "bob", Deposit{Amount: 5})
	fmt.Println(err)
	// Output:
	// true
	// 100 <nil>
	// 70 2 <nil>
	// 70 2 <nil>
	// eventsourcing: aggregate not found: Account/bob
}

// With an instance cache, Do keeps loaded aggregates between calls: a
// call loads only the events stored since the key's last use, and calls for
// one key take turns instead of conflicting in the store. fn reads the
// state it decided on without another load.
func ExampleRepository_Do() {
	ctx := context.Background()
	registry := es.NewStandardEventRegistry("Bank")
	if err := registry.RegisterEvent(Deposited{}, Withdrawn{}); err != nil {
		panic(err)
	}
	accounts := es.NewRepository(registry, es.NewStore(memory.NewBackend()), newAccount,
		es.WithInstanceCache(10_000))

	for _, amount := range []int64{100, 50} {
		err := accounts.Do(ctx, "alice", func(ctx context.Context, a *Account) error {
			if err := a.Handle(ctx, Deposit{Amount: amount}); err != nil {
				return err
			}
			fmt.Println(a.Balance, a.SequenceNumber())
			return nil
		})
		if err != nil {
			panic(err)
		}
	}
	// Output:
	// 100 1
	// 150 2
}
