// Package dispatchtest is an aggregate whose Handle and Replay methods are
// called through the dispatch methods cmd/esgen writes (esgen_dispatch.go,
// regenerated and compared by the tests of cmd/esgen), for the tests and
// benchmarks of the generated path.
package dispatchtest

import (
	"context"
	"errors"

	es "github.com/aggregatekit/eventsourcing"
)

//go:generate go run github.com/aggregatekit/eventsourcing/cmd/esgen

// Events and commands of the account.
type (
	Deposited struct {
		Amount    int64
		Reference string
	}
	Withdrawn struct {
		Amount    int64
		Reference string
	}
	Deposit struct {
		Amount    int64
		Reference string
	}
	Withdraw struct {
		Amount    int64
		Reference string
	}
	// Bump is a command whose handler changes it, to check that a retry
	// gets a fresh copy.
	Bump struct{ N int64 }
)

// ErrInsufficientFunds is returned by HandleWithdraw.
var ErrInsufficientFunds = errors.New("insufficient funds")

// Account is the aggregate.
type Account struct {
	es.AggregateBase `json:"-"`
	Balance          int64
	Bumps            int64
}

// HandleDeposit takes its command by value.
func (a *Account) HandleDeposit(c Deposit) ([]es.Event, error) {
	return []es.Event{Deposited(c)}, nil
}

// HandleWithdraw takes a context and a pointer.
func (a *Account) HandleWithdraw(_ context.Context, c *Withdraw) ([]es.Event, error) {
	if c.Amount > a.Balance {
		return nil, ErrInsufficientFunds
	}
	return []es.Event{&Withdrawn{Amount: c.Amount, Reference: c.Reference}}, nil
}

// HandleBump changes its command.
func (a *Account) HandleBump(c *Bump) ([]es.Event, error) {
	c.N++
	return []es.Event{Deposited{Amount: c.N}}, nil
}

// ReplayDeposited takes its event by value.
func (a *Account) ReplayDeposited(e Deposited) { a.Balance += e.Amount }

// ReplayWithdrawn takes a pointer.
func (a *Account) ReplayWithdrawn(e *Withdrawn) { a.Balance -= e.Amount }

// Registry returns a registry of the account's events.
func Registry() *es.StandardEventRegistry {
	r := es.NewStandardEventRegistry("dispatchtest")
	if err := r.RegisterEvent(Deposited{}, Withdrawn{}); err != nil {
		panic(err) // static
	}
	return r
}

// New returns a wired account.
func New(key string, registry es.EventRegistry, store es.EventStore) (*Account, error) {
	a := &Account{}
	a.Initialize(key, registry, store, func() any { return a })
	return a, a.AutomaticWireup(a)
}
