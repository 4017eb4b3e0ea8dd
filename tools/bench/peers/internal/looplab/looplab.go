// Package looplab is the bank account written with
// github.com/looplab/eventhorizon v0.17.0: an aggregate embedding
// *events.AggregateBase, commands handled by its HandleCommand (which appends
// events with AppendEvent), events applied by ApplyEvent once the aggregate
// store saved them, and commands dispatched by the library's aggregate
// command handler (commandhandler/aggregate), which loads the aggregate from
// the event-sourced aggregate store (aggregatestore/events), runs the
// command and saves.
//
// Written from the library's godoc and source. Two stores are offered:
//
//   - "eventhorizon": the library's own memory store (eventstore/memory). It
//     never encodes: it keeps event values and deep-copies each event's data
//     with github.com/jinzhu/copier (reflection) on every save and load.
//   - "eventhorizon-json": JSONStore, an eh.EventStore in this package that
//     keeps each event's data as encoding/json bytes beside its envelope
//     (type, time, version, metadata), as this repository's memory backend
//     does, so that the library does the same encoding work as ours.
//
// The library keeps its registries of aggregates and event data in
// package-level variables; they are filled once per process (sync.Once).
package looplab

import (
	"context"
	"fmt"
	"sync"
	"time"

	eh "github.com/looplab/eventhorizon"
	"github.com/looplab/eventhorizon/aggregatestore/events"
	"github.com/looplab/eventhorizon/commandhandler/aggregate"
	"github.com/looplab/eventhorizon/eventstore/memory"
	"github.com/looplab/eventhorizon/uuid"

	"github.com/aggregatekit/eventsourcing/tools/bench/peers/internal/bank"
)

// Names of the aggregate, its events and commands.
const (
	AccountType     eh.AggregateType = "Account"
	DepositedEvent  eh.EventType     = "Deposited"
	WithdrawnEvent  eh.EventType     = "Withdrawn"
	DepositCommand  eh.CommandType   = "Deposit"
	WithdrawCommand eh.CommandType   = "Withdraw"
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

// Deposit is the command to deposit Amount.
type Deposit struct {
	ID        uuid.UUID
	Amount    int64
	Reference string
}

// AggregateID returns the account the command is for.
func (c *Deposit) AggregateID() uuid.UUID { return c.ID }

// AggregateType returns AccountType.
func (c *Deposit) AggregateType() eh.AggregateType { return AccountType }

// CommandType returns DepositCommand.
func (c *Deposit) CommandType() eh.CommandType { return DepositCommand }

// Withdraw is the command to withdraw Amount.
type Withdraw struct {
	ID        uuid.UUID
	Amount    int64
	Reference string
}

// AggregateID returns the account the command is for.
func (c *Withdraw) AggregateID() uuid.UUID { return c.ID }

// AggregateType returns AccountType.
func (c *Withdraw) AggregateType() eh.AggregateType { return AccountType }

// CommandType returns WithdrawCommand.
func (c *Withdraw) CommandType() eh.CommandType { return WithdrawCommand }

// Account is the event-sourced bank account.
type Account struct {
	*events.AggregateBase
	Balance int64
}

// NewAccount returns the account with the given ID.
func NewAccount(id uuid.UUID) *Account {
	return &Account{AggregateBase: events.NewAggregateBase(AccountType, id)}
}

// HandleCommand decides a command and appends its events.
func (a *Account) HandleCommand(_ context.Context, cmd eh.Command) error {
	switch c := cmd.(type) {
	case *Deposit:
		if err := bank.Check(c.Amount); err != nil {
			return err
		}
		a.AppendEvent(DepositedEvent, &Deposited{Amount: c.Amount, Reference: c.Reference}, time.Now())
	case *Withdraw:
		if err := bank.Check(c.Amount); err != nil {
			return err
		}
		if c.Amount > a.Balance {
			return bank.ErrInsufficientFunds
		}
		a.AppendEvent(WithdrawnEvent, &Withdrawn{Amount: c.Amount, Reference: c.Reference}, time.Now())
	default:
		return fmt.Errorf("account: unknown command %s", cmd.CommandType())
	}
	return nil
}

// ApplyEvent applies a stored event to the state.
func (a *Account) ApplyEvent(_ context.Context, e eh.Event) error {
	switch d := e.Data().(type) {
	case *Deposited:
		a.Balance += d.Amount
	case *Withdrawn:
		a.Balance -= d.Amount
	default:
		return fmt.Errorf("account: unknown event %s", e.EventType())
	}
	return nil
}

var register sync.Once

func registerOnce() {
	register.Do(func() {
		eh.RegisterAggregate(func(id uuid.UUID) eh.Aggregate { return NewAccount(id) })
		eh.RegisterEventData(DepositedEvent, func() eh.EventData { return &Deposited{} })
		eh.RegisterEventData(WithdrawnEvent, func() eh.EventData { return &Withdrawn{} })
	})
}

// Library is eventhorizon over one of two stores.
type Library struct{ json bool }

// New returns the library over its memory store (json false) or over
// JSONStore (json true).
func New(json bool) *Library {
	registerOnce()
	return &Library{json: json}
}

// Name returns "eventhorizon" or "eventhorizon-json".
func (l *Library) Name() string {
	if l.json {
		return "eventhorizon-json"
	}
	return "eventhorizon"
}

// NewInstances creates n accounts the way the library's aggregate store
// does before loading: through the aggregate registry.
func (l *Library) NewInstances(id bank.ID, n int) any {
	var last eh.Aggregate
	for i := 0; i < n; i++ {
		a, err := eh.CreateAggregate(AccountType, id.UUID)
		if err != nil {
			panic(err)
		}
		last = a
	}
	return last
}

// NewStore returns the library over an empty store.
func (l *Library) NewStore() (bank.Store, error) {
	var es eh.EventStore
	if l.json {
		es = NewJSONStore()
	} else {
		m, err := memory.NewEventStore()
		if err != nil {
			return nil, err
		}
		es = m
	}
	aggs, err := events.NewAggregateStore(es)
	if err != nil {
		return nil, err
	}
	h, err := aggregate.NewCommandHandler(AccountType, aggs)
	if err != nil {
		return nil, err
	}
	return &store{es: es, aggs: aggs, handler: h}, nil
}

type store struct {
	es      eh.EventStore
	aggs    *events.AggregateStore
	handler *aggregate.CommandHandler
}

func (s *store) load(ctx context.Context, id bank.ID) (*Account, error) {
	a, err := s.aggs.Load(ctx, AccountType, id.UUID)
	if err != nil {
		return nil, err
	}
	return a.(*Account), nil
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
				a.AppendEvent(DepositedEvent, &Deposited{Amount: amt, Reference: bank.Reference}, time.Now())
			} else {
				a.AppendEvent(WithdrawnEvent, &Withdrawn{Amount: amt, Reference: bank.Reference}, time.Now())
			}
		}
		if err := s.aggs.Save(ctx, a); err != nil {
			return err
		}
		done += batch
	}
	return nil
}

// Command dispatches a Deposit through the library's command handler: it
// checks the command, loads a new aggregate instance, handles the command
// and saves.
func (s *store) Command(ctx context.Context, id bank.ID, amount int64) error {
	return s.handler.HandleCommand(ctx, &Deposit{ID: id.UUID, Amount: amount, Reference: bank.Reference})
}

func (s *store) Rebuild(ctx context.Context, id bank.ID) (int64, int, error) {
	a, err := s.load(ctx, id)
	if err != nil {
		return 0, 0, err
	}
	return a.Balance, a.AggregateVersion(), nil
}

func (s *store) Open(ctx context.Context, id bank.ID) (bank.Account, error) {
	a, err := s.load(ctx, id)
	if err != nil {
		return nil, err
	}
	return &kept{a: a, aggs: s.aggs}, nil
}

// kept is an instance kept between commands. The library's command handler
// always loads a new instance, so a kept instance is driven through the
// aggregate's HandleCommand and the aggregate store's Save, which applies
// the saved events to the instance ("in case the aggregate needs to be
// further used after this save"). Save's version check refuses a stale
// instance.
type kept struct {
	a    *Account
	aggs *events.AggregateStore
}

func (k *kept) Deposit(ctx context.Context, amount int64) error {
	if err := k.a.HandleCommand(ctx, &Deposit{ID: k.a.EntityID(), Amount: amount, Reference: bank.Reference}); err != nil {
		return err
	}
	return k.aggs.Save(ctx, k.a)
}

func (k *kept) Withdraw(ctx context.Context, amount int64) error {
	if err := k.a.HandleCommand(ctx, &Withdraw{ID: k.a.EntityID(), Amount: amount, Reference: bank.Reference}); err != nil {
		return err
	}
	return k.aggs.Save(ctx, k.a)
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
	return js.data(id.UUID), nil
}
