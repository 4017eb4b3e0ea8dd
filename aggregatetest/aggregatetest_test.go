package aggregatetest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/aggregatetest"
)

// fakeTB records what the kit reports.
type fakeTB struct {
	testing.TB
	errs []string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Errorf(format string, args ...any) {
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}

func (f *fakeTB) report() string { return strings.Join(f.errs, "\n---\n") }

// passes fails t if the scenario reported anything.
func passes(t *testing.T, f *fakeTB) {
	t.Helper()
	if len(f.errs) > 0 {
		t.Fatalf("the scenario failed:\n%s", f.report())
	}
}

// fails fails t unless the scenario reported exactly one failure holding
// every want.
func fails(t *testing.T, f *fakeTB, want ...string) {
	t.Helper()
	if len(f.errs) != 1 {
		t.Fatalf("%d failures reported, want 1:\n%s", len(f.errs), f.report())
	}
	for _, w := range want {
		if !strings.Contains(f.errs[0], w) {
			t.Errorf("the failure does not say %q:\n%s", w, f.errs[0])
		}
	}
}

func TestThenPasses(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("CET", 3600))
	for name, run := range map[string]func(tb testing.TB){
		"events": func(tb testing.TB) {
			aggregatetest.New(tb, bankRegistry(), NewAccount).
				Given(Deposited{Amount: 100}).
				When(Withdraw{Amount: 30, At: at}).
				Then(Withdrawn{Amount: 30, At: at.UTC()}) // the same instant
		},
		"pointer and value": func(tb testing.TB) {
			aggregatetest.New(tb, bankRegistry(), NewAccount).
				Given(&Deposited{Amount: 100}).
				When(&Withdraw{Amount: 30}).
				Then(&Withdrawn{Amount: 30, Tags: []string{}}) // nil and empty are equal
		},
		"several commits and commands": func(tb testing.TB) {
			aggregatetest.New(tb, bankRegistry(), NewAccount).
				Given(Deposited{Amount: 1}, Deposited{Amount: 2}).
				Given(Withdrawn{Amount: 3}).
				When(Deposit{Amount: 5}).
				When(Withdraw{Amount: 5}).
				Then(Deposited{Amount: 5}, Withdrawn{Amount: 5}).
				ThenState(func(t testing.TB, a *Account) {
					if a.Balance != 0 || a.SequenceNumber() != 5 {
						t.Errorf("balance %d at %d", a.Balance, a.SequenceNumber())
					}
				})
		},
		"no command": func(tb testing.TB) {
			aggregatetest.New(tb, bankRegistry(), NewAccount).
				Given(Deposited{Amount: 4}).
				Then().
				ThenState(func(t testing.TB, a *Account) {
					if a.Balance != 4 {
						t.Errorf("balance %d", a.Balance)
					}
				})
		},
		"error": func(tb testing.TB) {
			aggregatetest.New(tb, bankRegistry(), NewAccount).
				Given(Deposited{Amount: 10}).
				When(Deposit{Amount: 1}).
				When(Withdraw{Amount: 30}).
				ThenError(ErrInsufficientFunds).
				ThenState(func(t testing.TB, a *Account) {
					if a.Balance != 11 {
						t.Errorf("balance after the refused command: %d", a.Balance)
					}
				})
		},
		"define-wired": func(tb testing.TB) {
			aggregatetest.New(tb, bankRegistry(), newTally).
				Given(Deposited{Amount: 2}).
				When(Deposit{Amount: 3}).
				Then(Deposited{Amount: 3}).
				ThenState(func(t testing.TB, a *Tally) {
					if a.Total != 5 {
						t.Errorf("total %d", a.Total)
					}
				})
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := &fakeTB{}
			run(f)
			passes(t, f)
		})
	}
}

// A Tally is wired without reflection.
type Tally struct {
	es.AggregateBase `json:"-"`
	Total            int64
}

func newTally(key string, registry es.EventRegistry, store es.EventStore) (*Tally, error) {
	t := &Tally{}
	t.Initialize(key, registry, store, func() any { return t })
	if err := t.DefineReplayMethod(Deposited{}, func(e es.Event) { t.Total += e.(Deposited).Amount }); err != nil {
		return nil, err
	}
	t.IgnoreEvents(Withdrawn{})
	return t, t.DefineCommandHandler(Deposit{}, func(_ context.Context, cmd any) ([]es.Event, error) {
		return []es.Event{Deposited(cmd.(Deposit))}, nil
	})
}

func TestThenReportsReadably(t *testing.T) {
	f := &fakeTB{}
	aggregatetest.New(f, bankRegistry(), NewAccount).
		Key("alice").
		Given(Deposited{Amount: 100}).
		When(Withdraw{Amount: 30}).
		Then(Withdrawn{Amount: 30, Tags: []string{"rent"}})
	want := `aggregatetest: Account/alice: events differ
  given 1 event:
    1. Deposited{Amount: 100}
  when 1 command:
    1. Withdraw{Amount: 30, At: 0001-01-01T00:00:00Z}
  want 1 event:
    1. Withdrawn{Amount: 30, At: 0001-01-01T00:00:00Z, Tags: ["rent"]}
  stored 1 event:
    1. Withdrawn{Amount: 30, At: 0001-01-01T00:00:00Z, Tags: nil}
  event 1: Withdrawn.Tags: want 1 elements, got 0: want ["rent"], got nil
`
	if f.report() != want {
		t.Fatalf("got\n%s\nwant\n%s", f.report(), want)
	}

	for name, tc := range map[string]struct {
		then []es.Event
		want []string
	}{
		"missing": {[]es.Event{Withdrawn{Amount: 30}, Deposited{Amount: 1}}, []string{"want 2 events:", "stored 1 event:", "missing event 2: Deposited{Amount: 1}"}},
		"extra":   {nil, []string{"want 0 events", "stored 1 event:", "unexpected event 1: Withdrawn{Amount: 30,"}},
		"type":    {[]es.Event{Deposited{Amount: 30}}, []string{"event 1: want a aggregatetest_test.Deposited, got a aggregatetest_test.Withdrawn"}},
		"time": {[]es.Event{Withdrawn{Amount: 30, At: time.Date(2026, 1, 1, 0, 0, 0, 1, time.UTC)}},
			[]string{"Withdrawn.At: want 2026-01-01T00:00:00.000000001Z, got 0001-01-01T00:00:00Z"}},
	} {
		t.Run(name, func(t *testing.T) {
			f := &fakeTB{}
			aggregatetest.New(f, bankRegistry(), NewAccount).
				Given(Deposited{Amount: 100}).
				When(Withdraw{Amount: 30}).
				Then(tc.then...)
			fails(t, f, append(tc.want, "aggregatetest: Account/aggregatetest: events differ")...)
		})
	}
}

func TestThenError(t *testing.T) {
	for name, tc := range map[string]struct {
		run  func(tb testing.TB)
		want []string
	}{
		"succeeded": {func(tb testing.TB) {
			aggregatetest.New(tb, bankRegistry(), NewAccount).Given(Deposited{Amount: 50}).When(Withdraw{Amount: 30}).ThenError(ErrInsufficientFunds)
		}, []string{`the command succeeded, want an error matching "insufficient funds"`, "stored 1 event:", "1. Withdrawn{Amount: 30"}},
		"other error": {func(tb testing.TB) {
			aggregatetest.New(tb, bankRegistry(), NewAccount).When(Deposit{Amount: -1}).ThenError(ErrInsufficientFunds)
		}, []string{`the command failed with "deposit of -1: amount must be positive" (*errors.errorString), want an error matching "insufficient funds"`}},
		"earlier command": {func(tb testing.TB) {
			aggregatetest.New(tb, bankRegistry(), NewAccount).When(Withdraw{Amount: 1}).When(Deposit{Amount: 1}).ThenError(ErrInsufficientFunds)
		}, []string{"command 1 of 2 failed before the last: withdrawal of 1 from 0: insufficient funds"}},
		"no command": {func(tb testing.TB) {
			aggregatetest.New(tb, bankRegistry(), NewAccount).Given(Deposited{Amount: 1}).ThenError(ErrInsufficientFunds)
		}, []string{"ThenError without a command"}},
		"nil": {func(tb testing.TB) {
			aggregatetest.New(tb, bankRegistry(), NewAccount).When(Deposit{Amount: 1}).ThenError(nil)
		}, []string{"ThenError(nil)"}},
		"then after a failure": {func(tb testing.TB) {
			aggregatetest.New(tb, bankRegistry(), NewAccount).When(Withdraw{Amount: 1}).Then(Withdrawn{Amount: 1})
		}, []string{"command 1 failed: withdrawal of 1 from 0: insufficient funds", "want 1 event:\n    1. Withdrawn{Amount: 1,"}},
		"no handler": {func(tb testing.TB) {
			aggregatetest.New(tb, bankRegistry(), NewAccount).When("close").Then()
		}, []string{`command 1 failed: eventsourcing: no handler for command: string on Account`, `1. "close"`}},
	} {
		t.Run(name, func(t *testing.T) {
			f := &fakeTB{}
			tc.run(f)
			fails(t, f, tc.want...)
		})
	}
}

// Leaky raises an event with an unexported field, which the JSON codec
// does not store.
type Noted struct {
	Text string
	note string
}

type Note struct{ Text string }

type Notebook struct {
	es.AggregateBase `json:"-"`
	Texts            []string
	extra            int
}

func (n *Notebook) HandleNote(c Note) ([]es.Event, error) {
	if c.Text == "impure" {
		n.extra++
		n.Texts = append(n.Texts, "side effect") // changes state outside a Replay method
	}
	e := Noted{Text: c.Text}
	if c.Text == "a" {
		e.note = "lost a"
	}
	return []es.Event{e}, nil
}
func (n *Notebook) ReplayNoted(e Noted) { n.Texts = append(n.Texts, e.Text) }

func newNotebook(key string, registry es.EventRegistry, store es.EventStore) (*Notebook, error) {
	n := &Notebook{}
	n.Initialize(key, registry, store, func() any { return n })
	return n, n.AutomaticWireup(n)
}

func TestWhatWouldNotSurviveAStoreFails(t *testing.T) {
	reg := es.NewStandardEventRegistry("notes")
	if err := reg.RegisterEvent(Noted{}); err != nil {
		t.Fatal(err)
	}
	f := &fakeTB{}
	aggregatetest.New(f, reg, newNotebook).When(Note{Text: "a"}).Then(Noted{Text: "a", note: "lost a"})
	fails(t, f, "event 1 does not survive the registry's codec:",
		`raised Noted{Text: "a", note: "lost a"}`, `loaded Noted{Text: "a", note: ""}`, `Noted.note: want "lost a", got ""`)

	f = &fakeTB{}
	aggregatetest.New(f, reg, newNotebook).Given(Noted{Text: "g", note: "x"}).Then()
	fails(t, f, "given event 1 does not survive the registry's codec:", `Noted.note: want "x", got ""`)

	f = &fakeTB{}
	aggregatetest.New(f, reg, newNotebook).Given(Deposited{Amount: 1}).Then()
	fails(t, f, "given event 1, Deposited{Amount: 1}: eventsourcing: event type not registered")

	f = &fakeTB{}
	aggregatetest.New(f, reg, newNotebook).When(Deposit{Amount: 1}).Then()
	fails(t, f, "command 1 failed: eventsourcing: no handler for command")

	f = &fakeTB{}
	aggregatetest.New(f, reg, newNotebook).GivenStored("Nope", []byte(`{}`)).When(Note{Text: "a"}).ThenError(es.ErrUnknownEventType)
	passes(t, f)

	// The state reached by handling must be the state reached by loading.
	f = &fakeTB{}
	aggregatetest.New(f, reg, newNotebook).When(Note{Text: "impure"}).Then(Noted{Text: "impure"})
	fails(t, f, "the state after handling differs from the state after loading the stream",
		`handled {"Texts":["side effect","impure"]}`, `loaded  {"Texts":["impure"]}`)
}

func TestCommandIDs(t *testing.T) {
	ctx := context.Background()
	id := es.WithCommandID(ctx, "cmd-1")
	f := &fakeTB{}
	aggregatetest.New(f, bankRegistry(), NewAccount).
		GivenCommit("cmd-1", Deposited{Amount: 10}).
		WhenContext(id, Deposit{Amount: 10}).
		Then()
	passes(t, f)

	f = &fakeTB{}
	aggregatetest.New(f, bankRegistry(), NewAccount).
		WhenContext(id, Deposit{Amount: 10}).
		WhenContext(id, Deposit{Amount: 10}).
		Then(Deposited{Amount: 10}, Deposited{Amount: 10})
	fails(t, f, "missing event 2", `1. Deposit{Amount: 10} (command ID "cmd-1")`, `2. Deposit{Amount: 10} (command ID "cmd-1")`)

	f = &fakeTB{}
	aggregatetest.New(f, bankRegistry(), NewAccount).
		WhenContext(es.WithCommandID(ctx, "bad id"), Deposit{Amount: 10}).
		ThenError(es.ErrInvalidCommitID)
	passes(t, f)
}

func TestMisuse(t *testing.T) {
	f := &fakeTB{}
	aggregatetest.New[*Account](f, bankRegistry(), nil).When(Deposit{Amount: 1}).Then()
	fails(t, f, "New needs a registry and a factory")

	f = &fakeTB{}
	aggregatetest.New(f, bankRegistry(), func(string, es.EventRegistry, es.EventStore) (*Account, error) {
		return nil, errors.New("no config")
	}).When(Deposit{Amount: 1}).Then()
	fails(t, f, "the factory: no config")

	f = &fakeTB{}
	aggregatetest.New(f, bankRegistry(), func(string, es.EventRegistry, es.EventStore) (*Account, error) { return nil, nil }).Then()
	fails(t, f, "the factory returned a nil aggregate")

	f = &fakeTB{}
	aggregatetest.New(f, bankRegistry(), NewAccount).Key("").Then()
	fails(t, f, "the aggregate's stream: eventsourcing: invalid stream: empty key")

	// The scenario runs once; every check reports on the same run.
	f = &fakeTB{}
	runs := 0
	s := aggregatetest.New(f, bankRegistry(), func(k string, r es.EventRegistry, st es.EventStore) (*Account, error) {
		runs++
		return NewAccount(k, r, st)
	}).When(Deposit{Amount: 1})
	s.Then(Deposited{Amount: 1}).Then(Deposited{Amount: 1}).ThenState(func(testing.TB, *Account) {})
	passes(t, f)
	if runs != 3 { // one to learn the stream, one for the command, one to reload
		t.Fatalf("the factory ran %d times", runs)
	}
}

// Formatting of the kinds of fields an event may have.
type Everything struct {
	S     string
	I     int8
	U     uint64
	F     float64
	B     bool
	Bytes []byte
	Arr   [2]int
	M     map[string]int
	P     *Deposited
	NilP  *Deposited
	Any   any
	D     time.Duration
	Inner struct{ X int }
}

func TestFormat(t *testing.T) {
	reg := es.NewStandardEventRegistry("fmt")
	if err := reg.RegisterEvent(Everything{}, Noted{}); err != nil {
		t.Fatal(err)
	}
	ev := Everything{S: "a\"b", I: -3, U: 1 << 63, F: 0.5, B: true, Bytes: []byte("hi"), Arr: [2]int{1, 2},
		M: map[string]int{"z": 1, "a": 2}, P: &Deposited{Amount: 1}, Any: "x", D: 90 * time.Second}
	ev.Inner.X = 7
	f := &fakeTB{}
	aggregatetest.New(f, reg, newNotebook).Given(ev).Then(ev)
	want := `1. Everything{S: "a\"b", I: -3, U: 9223372036854775808, F: 0.5, B: true, Bytes: "hi", Arr: [1, 2], M: {"a": 2, "z": 1}, P: &Deposited{Amount: 1}, NilP: nil, Any: "x", D: 1m30s, Inner: {X: 7}}`
	if len(f.errs) != 1 || !strings.Contains(f.errs[0], want) {
		t.Fatalf("got\n%s\nwant it to hold\n%s", f.report(), want)
	}
}
