package ours

import (
	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/tools/bench/peers/internal/bank"
)

//go:generate go run github.com/aggregatekit/eventsourcing/cmd/esgen -types GenAccount

// GenAccount is Account with the dispatch methods cmd/esgen writes
// (esgen_dispatch.go): the same Handle and Replay methods, called directly.
type GenAccount struct {
	es.AggregateBase `json:"-"`
	Balance          int64
}

// HandleDeposit decides a deposit.
func (a *GenAccount) HandleDeposit(c Deposit) ([]es.Event, error) {
	if err := bank.Check(c.Amount); err != nil {
		return nil, err
	}
	return []es.Event{Deposited(c)}, nil
}

// HandleWithdraw decides a withdrawal.
func (a *GenAccount) HandleWithdraw(c Withdraw) ([]es.Event, error) {
	if err := bank.Check(c.Amount); err != nil {
		return nil, err
	}
	if c.Amount > a.Balance {
		return nil, bank.ErrInsufficientFunds
	}
	return []es.Event{Withdrawn(c)}, nil
}

// ReplayDeposited applies a deposit.
func (a *GenAccount) ReplayDeposited(e Deposited) { a.Balance += e.Amount }

// ReplayWithdrawn applies a withdrawal.
func (a *GenAccount) ReplayWithdrawn(e Withdrawn) { a.Balance -= e.Amount }

func (a *GenAccount) balance() int64 { return a.Balance }
