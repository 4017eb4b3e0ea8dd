package eventsourcing_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

func TestKindBindsInstancesToOneStream(t *testing.T) {
	ctx := context.Background()
	reg := bankRegistry(t)
	store := es.NewStore(memory.NewBackend())
	accounts, err := es.NewKind[*Account](reg, store)
	if err != nil {
		t.Fatal(err)
	}
	if got := accounts.AggregateType(); got != "Account" {
		t.Fatalf("AggregateType = %q, want Account", got)
	}
	a := &Account{}
	if err := accounts.Bind(a, "k"); err != nil {
		t.Fatal(err)
	}
	if a.Key() != "k" || a.AggregateType() != "Account" || a.SequenceNumber() != 0 {
		t.Fatalf("bound instance: key %q type %q sequence %d", a.Key(), a.AggregateType(), a.SequenceNumber())
	}
	if err := a.Handle(ctx, Deposit{Amount: 5}); err != nil {
		t.Fatal(err)
	}
	if err := a.Handle(ctx, Withdraw{Amount: 2}); err != nil {
		t.Fatal(err)
	}
	if a.Balance != 3 || a.SequenceNumber() != 2 {
		t.Fatalf("after two commands: balance %d sequence %d, want 3 and 2", a.Balance, a.SequenceNumber())
	}

	// An instance made by Initialize and AutomaticWireup reads the same stream.
	b, err := newAccount("k", reg, store)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Refresh(ctx); err != nil || b.Balance != 3 || b.StreamID() != a.StreamID() {
		t.Fatalf("Initialize'd instance: %v, balance %d, stream %v vs %v", err, b.Balance, b.StreamID(), a.StreamID())
	}

	// Binding again resets the instance for another key.
	if err := accounts.Bind(a, "other"); err != nil {
		t.Fatal(err)
	}
	if a.SequenceNumber() != 0 || a.Key() != "other" {
		t.Fatalf("rebound: key %q sequence %d", a.Key(), a.SequenceNumber())
	}
	if err := a.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if a.SequenceNumber() != 0 {
		t.Fatalf("stream other has %d events, want 0", a.SequenceNumber())
	}
}

func TestKindInstanceSettingsStayPerInstance(t *testing.T) {
	ctx := context.Background()
	store := es.NewStore(memory.NewBackend())
	accounts, err := es.NewKind[*Account](bankRegistry(t), store, es.WithAggregateType("Wallet"))
	if err != nil {
		t.Fatal(err)
	}
	a, b := &Account{}, &Account{}
	if err := errors.Join(accounts.Bind(a, "k"), accounts.Bind(b, "k")); err != nil {
		t.Fatal(err)
	}
	a.SetAggregateType("Purse")
	refuse := errors.New("refused")
	if err := a.DefineCommandHandler(Deposit{}, func(context.Context, any) ([]es.Event, error) { return nil, refuse }); err != nil {
		t.Fatal(err)
	}
	if err := a.Handle(ctx, Deposit{Amount: 1}); !errors.Is(err, refuse) {
		t.Fatalf("a's own handler: got %v", err)
	}
	if err := b.Handle(ctx, Deposit{Amount: 1}); err != nil {
		t.Fatalf("b keeps the Kind's handler: %v", err)
	}
	if got := b.StreamID().AggregateType; got != "Wallet" {
		t.Fatalf("b's aggregate type %q, want the Kind's Wallet", got)
	}
	if got := a.StreamID().AggregateType; got != "Purse" {
		t.Fatalf("a's aggregate type %q, want its own Purse", got)
	}
	if got := accounts.AggregateType(); got != "Wallet" {
		t.Fatalf("the Kind's aggregate type changed to %q", got)
	}
	c := &Account{}
	if err := accounts.Bind(c, "k"); err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(ctx); err != nil || c.Balance != 1 {
		t.Fatalf("a new instance of the Kind: %v, balance %d, want 1", err, c.Balance)
	}
}

func TestNewKindErrors(t *testing.T) {
	reg := bankRegistry(t)
	store := es.NewStore(memory.NewBackend())
	if _, err := es.NewKind[*Account](nil, store); !errors.Is(err, es.ErrNotInitialized) {
		t.Errorf("nil registry: %v", err)
	}
	if _, err := es.NewKind[*Account](reg, nil); !errors.Is(err, es.ErrNotInitialized) {
		t.Errorf("nil store: %v", err)
	}
	_, err := es.NewKind[*Broken](reg, store)
	var we *es.WireupError
	if !errors.As(err, &we) || !errors.Is(err, es.ErrInvalidWireup) || !strings.Contains(err.Error(), "HandleNoResults") {
		t.Errorf("malformed methods: %v", err)
	}
	empty := es.NewStandardEventRegistry("Bank")
	if _, err := es.NewKind[*ReplaysUnknown](empty, store); !errors.Is(err, es.ErrInvalidWireup) ||
		!strings.Contains(err.Error(), "does not know") {
		t.Errorf("unregistered replayed events: %v", err)
	}
	if _, err := es.NewKind[*Account](reg, store, es.WithAggregateType("bad\x00type")); !errors.Is(err, es.ErrInvalidStream) {
		t.Errorf("invalid aggregate type: %v", err)
	}
	accounts, err := es.NewKind[*Account](reg, store)
	if err != nil {
		t.Fatal(err)
	}
	if err := accounts.Bind(nil, "k"); !errors.Is(err, es.ErrNotInitialized) {
		t.Errorf("Bind(nil): %v", err)
	}
	a := &Account{}
	if err := accounts.Bind(a, ""); err != nil {
		t.Fatal(err)
	}
	if err := a.Handle(context.Background(), Deposit{Amount: 1}); !errors.Is(err, es.ErrInvalidStream) {
		t.Errorf("empty key: %v", err)
	}
	var zero es.Kind[*Account]
	if err := zero.Bind(a, "k"); !errors.Is(err, es.ErrNotInitialized) {
		t.Errorf("zero Kind: %v", err)
	}
	var zeroValue es.Kind[ValueAggregate] // A is not a pointer: no panic either
	if err := zeroValue.Bind(ValueAggregate{}, "k"); !errors.Is(err, es.ErrNotInitialized) {
		t.Errorf("zero Kind of a value type: %v", err)
	}
	if _, err := es.NewKind[ValueAggregate](reg, store); !errors.Is(err, es.ErrInvalidWireup) {
		t.Errorf("NewKind of a value type: %v", err)
	}
}

// A new instance of a Kind is one allocation: the aggregate itself.
func TestKindBindAllocations(t *testing.T) {
	accounts, err := es.NewKind[*Account](bankRegistry(t), es.NewStore(memory.NewBackend()))
	if err != nil {
		t.Fatal(err)
	}
	var last *Account
	allocs := testing.AllocsPerRun(100, func() {
		a := &Account{}
		if err := accounts.Bind(a, "k"); err != nil {
			t.Fatal(err)
		}
		last = a
	})
	if allocs > 1 {
		t.Fatalf("a new bound instance allocates %.0f times, want 1", allocs)
	}
	_ = last
}

// ValueAggregate satisfies Aggregate by value, through an embedded pointer,
// and holds a slice, so that it is not comparable.
type ValueAggregate struct {
	*es.AggregateBase
	Items []int
}
