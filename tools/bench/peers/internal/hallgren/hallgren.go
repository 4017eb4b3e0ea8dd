// Package hallgren is the bank account written with
// github.com/hallgren/eventsourcing v0.9.1 (the aggregate package) over its
// in-memory event store (eventstore/memory).
//
// Written from the library's README and source: the aggregate embeds
// aggregate.Root, applies events in Transition (a type switch on the event
// data), declares its events in Register, and records changes with
// aggregate.TrackChange, which applies them at once; aggregate.Load and
// aggregate.Save move them through the event store. The memory store keeps
// core.Event values whose Data and Metadata are bytes already encoded by the
// library's JSON encoder (encoding/json), so it does the same encoding work
// as ours: no adjustment is needed.
//
// The library keeps its registry of aggregates and events in a package-level
// variable; Register is called once per process (sync.Once).
package hallgren

import (
	"context"
	"errors"
	"sync"

	"github.com/hallgren/eventsourcing"
	"github.com/hallgren/eventsourcing/aggregate"
	"github.com/hallgren/eventsourcing/eventstore/memory"

	"github.com/aggregatekit/eventsourcing/tools/bench/peers/internal/bank"
)

// Deposited is the event of a deposit.
type Deposited struct {
	Amount    int64
	Reference string
}

// Withdrawn is the event of a withdrawal.
type Withdrawn struct {
	Amount    int64
	Reference string
}

// Account is the event-sourced bank account.
type Account struct {
	aggregate.Root
	Balance int64
}

// Transition applies an event to the state.
func (a *Account) Transition(e eventsourcing.Event) {
	switch d := e.Data().(type) {
	case *Deposited:
		a.Balance += d.Amount
	case *Withdrawn:
		a.Balance -= d.Amount
	}
}

// Register declares the account's events to the library's registry.
func (a *Account) Register(r aggregate.RegisterFunc) {
	r(&Deposited{}, &Withdrawn{})
}

// Deposit is the deposit command: it checks the amount and records the event.
func (a *Account) Deposit(amount int64) error {
	if err := bank.Check(amount); err != nil {
		return err
	}
	aggregate.TrackChange(a, &Deposited{Amount: amount, Reference: bank.Reference})
	return nil
}

// Withdraw is the withdrawal command.
func (a *Account) Withdraw(amount int64) error {
	if err := bank.Check(amount); err != nil {
		return err
	}
	if amount > a.Balance {
		return bank.ErrInsufficientFunds
	}
	aggregate.TrackChange(a, &Withdrawn{Amount: amount, Reference: bank.Reference})
	return nil
}

var register sync.Once

// Library is hallgren/eventsourcing.
type Library struct{}

// New returns the library, registering the account once per process.
func New() *Library {
	register.Do(func() { aggregate.Register(&Account{}) })
	return &Library{}
}

// Name returns "hallgren".
func (*Library) Name() string { return "hallgren" }

// NewInstances constructs n accounts with their ID set. The library's
// wire-up (Register) is per process, not per instance.
func (*Library) NewInstances(id bank.ID, n int) any {
	var last *Account
	for i := 0; i < n; i++ {
		a := &Account{}
		if err := a.SetID(id.Str); err != nil {
			panic(err)
		}
		last = a
	}
	return last
}

// NewStore returns the library over an empty memory event store.
func (*Library) NewStore() (bank.Store, error) { return &store{es: memory.Create()}, nil }

type store struct{ es *memory.Memory }

// load returns the account of id as stored; an empty stream is a new account.
func (s *store) load(ctx context.Context, id bank.ID) (*Account, error) {
	a := &Account{}
	if err := a.SetID(id.Str); err != nil {
		return nil, err
	}
	if err := aggregate.Load(ctx, s.es, id.Str, a); err != nil && !errors.Is(err, eventsourcing.ErrAggregateNotFound) {
		return nil, err
	}
	return a, nil
}

func (s *store) Seed(ctx context.Context, id bank.ID, n int) error {
	a, err := s.load(ctx, id)
	if err != nil {
		return err
	}
	for done := 0; done < n; {
		batch := min(100, n-done)
		for i := 0; i < batch; i++ {
			if dep, amt := bank.SeedEvent(done + i); dep {
				aggregate.TrackChange(a, &Deposited{Amount: amt, Reference: bank.Reference})
			} else {
				aggregate.TrackChange(a, &Withdrawn{Amount: amt, Reference: bank.Reference})
			}
		}
		if err := aggregate.Save(s.es, a); err != nil {
			return err
		}
		done += batch
	}
	return nil
}

func (s *store) Command(ctx context.Context, id bank.ID, amount int64) error {
	a, err := s.load(ctx, id)
	if err != nil {
		return err
	}
	if err := a.Deposit(amount); err != nil {
		return err
	}
	return aggregate.Save(s.es, a)
}

func (s *store) Rebuild(ctx context.Context, id bank.ID) (int64, int, error) {
	a, err := s.load(ctx, id)
	if err != nil {
		return 0, 0, err
	}
	return a.Balance, int(a.Version()), nil
}

func (s *store) Open(ctx context.Context, id bank.ID) (bank.Account, error) {
	a, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	return &kept{a: a, es: s.es}, nil
}

// kept is an instance kept between commands. A command records its event
// and saves; it does not reload first (Save's version check refuses a stale
// instance with ErrConcurrency). The library could reload with
// aggregate.Load on the kept instance, but its memory store scans the whole
// stream to find the new events, so the cost would grow with the stream.
type kept struct {
	a  *Account
	es *memory.Memory
}

func (k *kept) Deposit(_ context.Context, amount int64) error {
	if err := k.a.Deposit(amount); err != nil {
		return err
	}
	return aggregate.Save(k.es, k.a)
}

func (k *kept) Withdraw(_ context.Context, amount int64) error {
	if err := k.a.Withdraw(amount); err != nil {
		return err
	}
	return aggregate.Save(k.es, k.a)
}

func (k *kept) Balance() int64 { return k.a.Balance }
func (k *kept) Version() int   { return int(k.a.Version()) }

// StoredData returns the encoded data of every event of id's stream.
func (s *store) StoredData(ctx context.Context, id bank.ID) ([][]byte, error) {
	it, err := s.es.Get(ctx, id.Str, "Account", 0)
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out [][]byte
	for it.Next() {
		e, err := it.Value()
		if err != nil {
			return nil, err
		}
		out = append(out, e.Data)
	}
	return out, nil
}
