package eventsourcing_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

// Broken has one of each kind of malformed method.
type Broken struct {
	es.AggregateBase `json:"-"`
	N                int
}

type Unknown struct{}

func (b *Broken) HandleNoResults(c Deposit)                             {}
func (b *Broken) HandleWrongResults(c Deposit) (int, error)             { return 0, nil }
func (b *Broken) HandleTwoArgs(a, c Deposit) ([]es.Event, error)        { return nil, nil }
func (b *Broken) HandleInterface(c any) ([]es.Event, error)             { return nil, nil }
func (b *Broken) HandleDeposit(c Deposit) ([]es.Event, error)           { return nil, nil }
func (b *Broken) HandleDepositAgain(c *Deposit) ([]es.Event, error)     { return nil, nil }
func (b Broken) HandleByValue(c Withdraw) ([]es.Event, error)           { return nil, nil }
func (b *Broken) ReplayTooMany(e Deposited, f Deposited)                {}
func (b *Broken) ReplayResult(e Deposited) error                        { return nil }
func (b *Broken) ReplayDeposited(e Deposited)                           {}
func (b *Broken) ReplayDepositedPtr(e *Deposited)                       {}
func (b *Broken) ReplayUnnamed(e struct{ X int })                       {}
func (b *Broken) HandleCtxSecond(c Deposit, ctx context.Context) error  { return nil }
func (b *Broken) HandleBadCtx(s string, c Withdraw) ([]es.Event, error) { return nil, nil }
func (b *Broken) HandleVariadic(c ...Deposit) ([]es.Event, error)       { return nil, nil }
func (b *Broken) NotAHandler(c Deposit) int                             { return 0 }
func (b *Broken) Replay2(e Unknown)                                     {}

func TestWireupReportsEveryProblem(t *testing.T) {
	reg := es.NewStandardEventRegistry("t")
	_ = reg.RegisterEvent(Deposited{})
	b := &Broken{}
	b.Initialize("k", reg, es.NewStore(memory.NewBackend()), func() any { return b })
	err := b.AutomaticWireup(b)
	if !errors.Is(err, es.ErrInvalidWireup) {
		t.Fatalf("got %v, want ErrInvalidWireup", err)
	}
	var we *es.WireupError
	if !errors.As(err, &we) {
		t.Fatalf("not a *WireupError: %T", err)
	}
	msg := err.Error()
	for _, name := range []string{"HandleNoResults", "HandleWrongResults", "HandleTwoArgs", "HandleInterface",
		"HandleDepositAgain", "HandleByValue", "ReplayTooMany", "ReplayResult", "ReplayDepositedPtr", "ReplayUnnamed",
		"HandleCtxSecond", "HandleBadCtx", "HandleVariadic", "Replay2"} {
		if !strings.Contains(msg, name) {
			t.Errorf("error does not name %s:\n%s", name, msg)
		}
	}
	if strings.Contains(msg, "NotAHandler") {
		t.Errorf("error names a method that is neither Handle nor Replay: %s", msg)
	}
	if len(we.Problems) != 14 {
		t.Errorf("got %d problems, want 14 (13 shapes and 1 unregistered event):\n%s", len(we.Problems), strings.Join(we.Problems, "\n"))
	}
	// The shape check is cached but every instance gets the whole error,
	// and changing one error does not change the next.
	we.Problems[0] = "changed by a caller"
	b2 := &Broken{}
	b2.Initialize("k2", reg, es.NewStore(memory.NewBackend()), func() any { return b2 })
	err = b2.AutomaticWireup(b2)
	if !errors.Is(err, es.ErrInvalidWireup) || strings.Contains(err.Error(), "changed by a caller") || !strings.Contains(err.Error(), "Replay2") {
		t.Fatalf("second instance: got %v", err)
	}
}

type ReplaysUnknown struct {
	es.AggregateBase `json:"-"`
}

func (r *ReplaysUnknown) ReplayDeposited(Deposited) {}
func (r *ReplaysUnknown) ReplayWithdrawn(Withdrawn) {}

func TestWireupRejectsUnregisteredReplayAndBadSubjects(t *testing.T) {
	reg := es.NewStandardEventRegistry("t")
	_ = reg.RegisterEvent(Deposited{})
	r := &ReplaysUnknown{}
	r.Initialize("k", reg, es.NewStore(memory.NewBackend()), func() any { return r })
	err := r.AutomaticWireup(r)
	if !errors.Is(err, es.ErrInvalidWireup) || !strings.Contains(err.Error(), "ReplayWithdrawn") || strings.Contains(err.Error(), "ReplayDeposited ") {
		t.Fatalf("unregistered replay: %v", err)
	}
	for _, subject := range []any{nil, *r, (*ReplaysUnknown)(nil), 42} {
		if err := r.AutomaticWireup(subject); !errors.Is(err, es.ErrInvalidWireup) {
			t.Errorf("subject %T: got %v, want ErrInvalidWireup", subject, err)
		}
	}
	// A subject that is not the aggregate embedding this AggregateBase.
	reg2 := es.NewStandardEventRegistry("t")
	_ = reg2.RegisterEvent(Deposited{}, Withdrawn{})
	a, other := &Account{}, &Account{}
	a.Initialize("k", reg2, es.NewStore(memory.NewBackend()), func() any { return a })
	if err := a.AutomaticWireup(other); !errors.Is(err, es.ErrInvalidWireup) || !strings.Contains(err.Error(), "another aggregate") {
		t.Errorf("foreign subject: %v", err)
	}
	var uninit ReplaysUnknown
	if err := uninit.AutomaticWireup(&uninit); !errors.Is(err, es.ErrNotInitialized) {
		t.Errorf("before Initialize: got %v", err)
	}
	type NoBase struct{ N int }
	if err := r.AutomaticWireup(&NoBase{}); !errors.Is(err, es.ErrInvalidWireup) || !strings.Contains(err.Error(), "embed") {
		t.Errorf("struct without AggregateBase: %v", err)
	}
}

func TestCommandsMatchPointerOrValue(t *testing.T) {
	ctx := context.Background()
	reg := es.NewStandardEventRegistry("Bank")
	_ = reg.RegisterEvent(Deposited{}, Withdrawn{})
	a, err := newAccount("k", reg, es.NewStore(memory.NewBackend()))
	if err != nil {
		t.Fatal(err)
	}
	// HandleDeposit takes a value, HandleWithdraw a value with ctx; both get pointers too.
	for _, cmd := range []any{Deposit{Amount: 10}, &Deposit{Amount: 10}, Withdraw{Amount: 1}, &Withdraw{Amount: 1}} {
		if err := a.Handle(ctx, cmd); err != nil {
			t.Fatalf("%T: %v", cmd, err)
		}
	}
	if a.Balance != 18 {
		t.Fatalf("balance %d, want 18", a.Balance)
	}
	if err := a.Handle(ctx, "nope"); !errors.Is(err, es.ErrNoHandler) {
		t.Fatalf("unknown command: %v", err)
	}
	if err := a.Handle(ctx, nil); !errors.Is(err, es.ErrInvalidCommand) {
		t.Fatalf("nil command: %v", err)
	}
	if err := a.Handle(ctx, (*Deposit)(nil)); !errors.Is(err, es.ErrInvalidCommand) {
		t.Fatalf("nil pointer command: %v", err)
	}
}

func TestWireupAllocations(t *testing.T) {
	reg := es.NewStandardEventRegistry("Bank")
	_ = reg.RegisterEvent(Deposited{}, Withdrawn{})
	store := es.NewStore(memory.NewBackend())
	a := &Account{}
	state := func() any { return a }
	a.Initialize("k", reg, store, state)
	if err := a.AutomaticWireup(a); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		a.Initialize("k", reg, store, state)
		if err := a.AutomaticWireup(a); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 2 {
		t.Fatalf("Initialize + AutomaticWireup allocate %.0f times per instance, want at most 2", allocs)
	}
}

func typeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }
