// Package ours is the bank account written with this repository's library
// (github.com/aggregatekit/eventsourcing) over its in-memory backend
// (stores/memory), which keeps every event's data as JSON bytes.
//
// Three configurations are offered: New(Reflection) wires the aggregate by
// reflection (AutomaticWireup finds the Handle and Replay methods and calls
// them through reflect), New(Generated) keeps the same methods and adds the
// dispatch methods cmd/esgen writes (gen_account.go, esgen_dispatch.go), so
// AutomaticWireup calls them directly, and New(Define) uses the
// reflection-free DefineCommandHandler and DefineReplayMethod.
package ours

import (
	"context"
	"fmt"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/codecs/gojson"
	"github.com/aggregatekit/eventsourcing/stores/memory"
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

// Deposit is the command to deposit Amount.
type Deposit struct {
	Amount    int64
	Reference string
}

// Withdraw is the command to withdraw Amount.
type Withdraw struct {
	Amount    int64
	Reference string
}

// Account is the event-sourced bank account.
type Account struct {
	es.AggregateBase `json:"-"`
	Balance          int64
}

// HandleDeposit decides a deposit.
func (a *Account) HandleDeposit(c Deposit) ([]es.Event, error) {
	if err := bank.Check(c.Amount); err != nil {
		return nil, err
	}
	return []es.Event{Deposited(c)}, nil
}

// HandleWithdraw decides a withdrawal.
func (a *Account) HandleWithdraw(c Withdraw) ([]es.Event, error) {
	if err := bank.Check(c.Amount); err != nil {
		return nil, err
	}
	if c.Amount > a.Balance {
		return nil, bank.ErrInsufficientFunds
	}
	return []es.Event{Withdrawn(c)}, nil
}

// ReplayDeposited applies a deposit.
func (a *Account) ReplayDeposited(e Deposited) { a.Balance += e.Amount }

// ReplayWithdrawn applies a withdrawal.
func (a *Account) ReplayWithdrawn(e Withdrawn) { a.Balance -= e.Amount }

// Mode is a way of wiring the aggregate.
type Mode int

// The wire-up configurations.
const (
	Reflection      Mode = iota // AutomaticWireup, reflective calls: "us"
	Generated                   // AutomaticWireup with cmd/esgen's dispatch methods: "us-generated"
	Define                      // DefineCommandHandler and DefineReplayMethod: "us-define"
	GeneratedGoJSON             // Generated, with the codecs/gojson codec: "us-generated-gojson"
)

// Library is this repository's library in one wire-up configuration.
type Library struct {
	mode     Mode
	registry *es.StandardEventRegistry
	kinds    kinds // over a store only bound by NewInstances, never used
}

// kinds binds accounts to one store: AutomaticWireup's work, done once
// per type and store (see es.Kind).
type kinds struct {
	store    es.EventStore
	accounts *es.Kind[*Account]
	gen      *es.Kind[*GenAccount]
}

func (l *Library) kindsFor(store es.EventStore) (kinds, error) {
	k := kinds{store: store}
	var err error
	switch l.mode {
	case Reflection:
		k.accounts, err = es.NewKind[*Account](l.registry, store)
	case Generated, GeneratedGoJSON:
		k.gen, err = es.NewKind[*GenAccount](l.registry, store, es.WithAggregateType("Account"))
	}
	return k, err
}

// New returns the library wired in mode.
func New(mode Mode) (*Library, error) {
	var opts []es.RegistryOption
	if mode == GeneratedGoJSON {
		opts = append(opts, es.WithCodec(gojson.Codec{}))
	}
	reg := es.NewStandardEventRegistry("bank", opts...)
	if err := reg.RegisterEvent(Deposited{}, Withdrawn{}); err != nil {
		return nil, err
	}
	l := &Library{mode: mode, registry: reg}
	k, err := l.kindsFor(es.NewStore(memory.NewBackend()))
	if err != nil {
		return nil, err
	}
	l.kinds = k
	return l, nil
}

// Name returns "us", "us-generated", "us-define" or "us-generated-gojson".
func (l *Library) Name() string {
	return [...]string{"us", "us-generated", "us-define", "us-generated-gojson"}[l.mode]
}

// NewInstances constructs n wired accounts. Like the peers' loops, the
// loop of a Kind's configuration makes the instances directly.
func (l *Library) NewInstances(id bank.ID, n int) any {
	if k := l.kinds.gen; k != nil {
		var last *GenAccount
		for i := 0; i < n; i++ {
			g := &GenAccount{}
			if err := k.Bind(g, id.Str); err != nil {
				panic(err) // a wire-up error here is a bug in this file
			}
			last = g
		}
		return last
	}
	if k := l.kinds.accounts; k != nil {
		var last *Account
		for i := 0; i < n; i++ {
			a := &Account{}
			if err := k.Bind(a, id.Str); err != nil {
				panic(err)
			}
			last = a
		}
		return last
	}
	var last account
	for i := 0; i < n; i++ {
		a, err := l.account(id.Str, l.kinds)
		if err != nil {
			panic(err) // a wire-up error here is a bug in this file
		}
		last = a
	}
	return last
}

// account is what the workloads need of an account, whatever its type.
type account interface {
	Handle(ctx context.Context, cmd any) error
	Refresh(ctx context.Context) error
	Run(ctx context.Context, fn func(ctx context.Context) ([]es.Event, error)) error
	SequenceNumber() int64
	balance() int64
}

func (a *Account) balance() int64 { return a.Balance }

// account returns a new, wired account for key: bound to its Kind, or
// for Define made by Initialize and the Define functions.
func (l *Library) account(key string, k kinds) (account, error) {
	switch l.mode {
	case Generated, GeneratedGoJSON:
		g := &GenAccount{}
		return g, k.gen.Bind(g, key)
	case Reflection:
		a := &Account{}
		return a, k.accounts.Bind(a, key)
	}
	a := &Account{}
	a.Initialize(key, l.registry, k.store, func() any { return a })
	if err := a.DefineReplayMethod(Deposited{}, func(e es.Event) { a.ReplayDeposited(e.(Deposited)) }); err != nil {
		return nil, err
	}
	if err := a.DefineReplayMethod(Withdrawn{}, func(e es.Event) { a.ReplayWithdrawn(e.(Withdrawn)) }); err != nil {
		return nil, err
	}
	if err := a.DefineCommandHandler(Deposit{}, func(_ context.Context, c any) ([]es.Event, error) {
		return a.HandleDeposit(c.(Deposit))
	}); err != nil {
		return nil, err
	}
	return a, a.DefineCommandHandler(Withdraw{}, func(_ context.Context, c any) ([]es.Event, error) {
		return a.HandleWithdraw(c.(Withdraw))
	})
}

// NewStore returns the library over an empty in-memory backend.
func (l *Library) NewStore() (bank.Store, error) {
	k, err := l.kindsFor(es.NewStore(memory.NewBackend()))
	if err != nil {
		return nil, err
	}
	return &store{lib: l, es: k.store, kinds: k}, nil
}

type store struct {
	lib   *Library
	es    es.EventStore
	kinds kinds
}

func (s *store) Seed(ctx context.Context, id bank.ID, n int) error {
	a, err := s.lib.account(id.Str, s.kinds)
	if err != nil {
		return err
	}
	for done := 0; done < n; {
		batch := min(100, n-done)
		err := a.Run(ctx, func(context.Context) ([]es.Event, error) {
			events := make([]es.Event, batch)
			for i := range events {
				if dep, amt := bank.SeedEvent(done + i); dep {
					events[i] = Deposited{Amount: amt, Reference: bank.Reference}
				} else {
					events[i] = Withdrawn{Amount: amt, Reference: bank.Reference}
				}
			}
			return events, nil
		})
		if err != nil {
			return fmt.Errorf("seed %s: %w", id.Str, err)
		}
		done += batch
	}
	return nil
}

func (s *store) Command(ctx context.Context, id bank.ID, amount int64) error {
	a, err := s.lib.account(id.Str, s.kinds)
	if err != nil {
		return err
	}
	return a.Handle(ctx, Deposit{Amount: amount, Reference: bank.Reference})
}

func (s *store) Rebuild(ctx context.Context, id bank.ID) (int64, int, error) {
	a, err := s.lib.account(id.Str, s.kinds)
	if err != nil {
		return 0, 0, err
	}
	if err := a.Refresh(ctx); err != nil {
		return 0, 0, err
	}
	return a.balance(), int(a.SequenceNumber()), nil
}

func (s *store) Open(ctx context.Context, id bank.ID) (bank.Account, error) {
	a, err := s.lib.account(id.Str, s.kinds)
	if err != nil {
		return nil, err
	}
	if err := a.Refresh(ctx); err != nil {
		return nil, err
	}
	return kept{a}, nil
}

// kept is an instance kept between commands: each command is one Handle,
// which refreshes (loads nothing new), decides, commits and applies.
type kept struct{ a account }

func (k kept) Deposit(ctx context.Context, amount int64) error {
	return k.a.Handle(ctx, Deposit{Amount: amount, Reference: bank.Reference})
}

func (k kept) Withdraw(ctx context.Context, amount int64) error {
	return k.a.Handle(ctx, Withdraw{Amount: amount, Reference: bank.Reference})
}

func (k kept) Balance() int64 { return k.a.balance() }
func (k kept) Version() int   { return int(k.a.SequenceNumber()) }

// StoredData returns the encoded data of every event of id's stream, for
// tests that check every library stores the same JSON.
func (s *store) StoredData(ctx context.Context, id bank.ID) ([][]byte, error) {
	var out [][]byte
	b := es.BackendOf(s.es)
	for rec, err := range b.Load(ctx, es.StreamID{AggregateType: "Account", Key: id.Str}, 0) {
		if err != nil {
			return nil, err
		}
		out = append(out, rec.Data)
	}
	return out, nil
}
