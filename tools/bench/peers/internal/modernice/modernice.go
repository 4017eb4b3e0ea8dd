// Package modernice is the bank account written with
// github.com/modernice/goes v0.9.0: an aggregate embedding *aggregate.Base,
// commands as methods that record events with aggregate.Next (which applies
// them at once through ApplyEvent, here a switch on the event name), and
// the library's aggregate repository (aggregate/repository) to fetch and
// save.
//
// Written from the library's README, godoc and source. Two stores are
// offered:
//
//   - "goes": the library's in-memory store (event/eventstore.New). It never
//     encodes: it keeps the event values themselves, shares them with
//     readers, and answers every query by testing every event of every
//     stream in the store.
//   - "goes-json": JSONStore, an event.Store in this package that keeps each
//     event's data encoded by the library's codec registry (encoding/json by
//     default, what its MongoDB and PostgreSQL stores use) beside the
//     envelope, indexed by aggregate, so that the library does the same
//     encoding work as ours.
package modernice

import (
	"context"

	"github.com/google/uuid"
	"github.com/modernice/goes/aggregate"
	"github.com/modernice/goes/aggregate/repository"
	"github.com/modernice/goes/codec"
	"github.com/modernice/goes/event"
	"github.com/modernice/goes/event/eventstore"

	"github.com/aggregatekit/eventsourcing/tools/bench/peers/internal/bank"
)

// Names of the aggregate and its events.
const (
	AccountAggregate = "bank.account"
	DepositedEvent   = "bank.account.deposited"
	WithdrawnEvent   = "bank.account.withdrawn"
)

// Deposited is the data of a deposit event.
type Deposited struct {
	Amount    int64
	Reference string
}

// Withdrawn is the data of a withdrawal event.
type Withdrawn struct {
	Amount    int64
	Reference string
}

// Account is the event-sourced bank account.
type Account struct {
	*aggregate.Base
	Balance int64
}

// NewAccount returns the account with the given ID.
func NewAccount(id uuid.UUID) *Account {
	return &Account{Base: aggregate.New(AccountAggregate, id)}
}

// ApplyEvent applies an event to the state.
func (a *Account) ApplyEvent(evt event.Event) {
	switch evt.Name() {
	case DepositedEvent:
		a.Balance += evt.Data().(Deposited).Amount
	case WithdrawnEvent:
		a.Balance -= evt.Data().(Withdrawn).Amount
	}
}

// Deposit is the deposit command: it checks the amount and raises the event.
func (a *Account) Deposit(amount int64) error {
	if err := bank.Check(amount); err != nil {
		return err
	}
	aggregate.Next(a, DepositedEvent, Deposited{Amount: amount, Reference: bank.Reference})
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
	aggregate.Next(a, WithdrawnEvent, Withdrawn{Amount: amount, Reference: bank.Reference})
	return nil
}

// Registry returns a codec registry of the account's events.
func Registry() *codec.Registry {
	r := event.NewRegistry()
	codec.Register[Deposited](r, DepositedEvent)
	codec.Register[Withdrawn](r, WithdrawnEvent)
	return r
}

// Library is goes over one of two stores.
type Library struct{ json bool }

// New returns the library over its memory store (json false) or over
// JSONStore (json true).
func New(json bool) *Library { return &Library{json: json} }

// Name returns "goes" or "goes-json".
func (l *Library) Name() string {
	if l.json {
		return "goes-json"
	}
	return "goes"
}

// NewInstances constructs n accounts.
func (*Library) NewInstances(id bank.ID, n int) any {
	var last *Account
	for i := 0; i < n; i++ {
		last = NewAccount(id.UUID)
	}
	return last
}

// NewStore returns the library over an empty store.
func (l *Library) NewStore() (bank.Store, error) {
	var es event.Store
	if l.json {
		es = NewJSONStore(Registry())
	} else {
		es = eventstore.New()
	}
	return &store{es: es, repo: repository.New(es)}, nil
}

type store struct {
	es   event.Store
	repo *repository.Repository
}

func (s *store) Seed(ctx context.Context, id bank.ID, n int) error {
	a := NewAccount(id.UUID)
	if err := s.repo.Fetch(ctx, a); err != nil {
		return err
	}
	for done := 0; done < n; {
		batch := min(100, n-done)
		for i := 0; i < batch; i++ {
			if dep, amt := bank.SeedEvent(done + i); dep {
				aggregate.Next(a, DepositedEvent, Deposited{Amount: amt, Reference: bank.Reference})
			} else {
				aggregate.Next(a, WithdrawnEvent, Withdrawn{Amount: amt, Reference: bank.Reference})
			}
		}
		if err := s.repo.Save(ctx, a); err != nil {
			return err
		}
		done += batch
	}
	return nil
}

// Command runs a Deposit through Repository.Use: fetch, decide, save.
func (s *store) Command(ctx context.Context, id bank.ID, amount int64) error {
	a := NewAccount(id.UUID)
	return s.repo.Use(ctx, a, func() error { return a.Deposit(amount) })
}

func (s *store) Rebuild(ctx context.Context, id bank.ID) (int64, int, error) {
	a := NewAccount(id.UUID)
	if err := s.repo.Fetch(ctx, a); err != nil {
		return 0, 0, err
	}
	return a.Balance, a.AggregateVersion(), nil
}

func (s *store) Open(ctx context.Context, id bank.ID) (bank.Account, error) {
	a := NewAccount(id.UUID)
	if err := s.repo.Fetch(ctx, a); err != nil {
		return nil, err
	}
	return &kept{a: a, repo: s.repo}, nil
}

// kept is an instance kept between commands: a command raises its event and
// saves, without fetching first (Repository.Use would fetch, and the
// library's memory store answers a fetch by scanning every event it holds).
// The store's version check refuses a stale instance.
type kept struct {
	a    *Account
	repo *repository.Repository
}

func (k *kept) Deposit(ctx context.Context, amount int64) error {
	if err := k.a.Deposit(amount); err != nil {
		return err
	}
	return k.save(ctx)
}

func (k *kept) Withdraw(ctx context.Context, amount int64) error {
	if err := k.a.Withdraw(amount); err != nil {
		return err
	}
	return k.save(ctx)
}

func (k *kept) save(ctx context.Context) error {
	// On failure the instance has already applied the event (aggregate.Next
	// applies at once): the library's own behaviour, left as it is.
	return k.repo.Save(ctx, k.a)
}

func (k *kept) Balance() int64 { return k.a.Balance }
func (k *kept) Version() int   { return k.a.AggregateVersion() }

// StoredData returns the encoded data of every event of id's stream (only
// for JSONStore; the memory store keeps no bytes).
func (s *store) StoredData(_ context.Context, id bank.ID) ([][]byte, error) {
	js, ok := s.es.(*JSONStore)
	if !ok {
		return nil, nil
	}
	return js.data(AccountAggregate, id.UUID), nil
}
