package aggregatetest_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	es "github.com/aggregatekit/eventsourcing"
)

// The aggregate of the examples and tests: a bank account.

type Deposited struct{ Amount int64 }
type Withdrawn struct {
	Amount int64
	At     time.Time
	Tags   []string
}

type Deposit struct{ Amount int64 }
type Withdraw struct {
	Amount int64
	At     time.Time
}

var ErrInsufficientFunds = errors.New("insufficient funds")

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

func (a *Account) HandleWithdraw(_ context.Context, c Withdraw) ([]es.Event, error) {
	if c.Amount > a.Balance {
		return nil, fmt.Errorf("withdrawal of %d from %d: %w", c.Amount, a.Balance, ErrInsufficientFunds)
	}
	return []es.Event{&Withdrawn{Amount: c.Amount, At: c.At}}, nil
}

func (a *Account) ReplayDeposited(e Deposited) { a.Balance += e.Amount }
func (a *Account) ReplayWithdrawn(e Withdrawn) { a.Balance -= e.Amount }

// NewAccount is the aggregate's factory, as the application gives it to
// its Repository.
func NewAccount(key string, registry es.EventRegistry, store es.EventStore) (*Account, error) {
	a := &Account{}
	a.Initialize(key, registry, store, func() any { return a })
	return a, a.AutomaticWireup(a)
}

func bankRegistry() *es.StandardEventRegistry {
	r := es.NewStandardEventRegistry("bank")
	if err := r.RegisterEvent(Deposited{}, Withdrawn{}); err != nil {
		panic(err)
	}
	return r
}
