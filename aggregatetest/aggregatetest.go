// Package aggregatetest tests event-sourced aggregates in the
// given-when-then style: given the events already in an aggregate's
// stream, when it handles commands, then it raises these events (or fails
// with this error) and ends in this state.
//
//	func TestWithdraw(t *testing.T) {
//		aggregatetest.New(t, registry, NewAccount).
//			Given(Deposited{Amount: 100}).
//			When(Withdraw{Amount: 30}).
//			Then(Withdrawn{Amount: 30}).
//			ThenState(func(t testing.TB, a *Account) {
//				if a.Balance != 70 {
//					t.Errorf("balance %d, want 70", a.Balance)
//				}
//			})
//	}
//
// NewAccount is the aggregate's eventsourcing.Factory, the constructor the
// application also gives its eventsourcing.Repository, so the test runs the
// aggregate exactly as wired in production, by AutomaticWireup or by
// DefineCommandHandler and DefineReplayMethod. There is no store to set up:
// each scenario runs on its own in-memory store, through the same path as a
// database store. Given events are encoded by the registry's codec and
// appended to a memory backend; commands run through
// eventsourcing.NewStore over it; what they commit is loaded and decoded
// back. So an event that would not survive being stored (a field the codec
// does not keep, a type the registry does not know) fails the test, as it
// would fail the application.
//
// Besides the events, every successful scenario checks that the state the
// aggregate reached by handling the commands equals the state a fresh
// instance reaches by loading the stream (as the codec encodes them): a
// Replay method that depends on anything but its event shows up here.
//
// Failures are reported with t.Errorf, never t.Fatalf, and list the given
// events, the commands, and the wanted and stored events with their types
// and fields, followed by the first difference.
//
// A Scenario is used by one goroutine. RunUpcasting is for authors of
// stores and middleware stacks: it checks that events written by an old
// version of an aggregate load into the new one through upcasters.
package aggregatetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

// DefaultKey is the stream key of a Scenario unless Key sets another.
const DefaultKey = "aggregatetest"

// Scenario is one given-when-then test of an aggregate. Build it with New,
// add history with the Given methods and commands with the When methods (in
// any order: the history is always stored first), then check the outcome
// with Then or ThenError, and the state with ThenState. The scenario runs
// once, at the first check; later checks look at the same outcome.
type Scenario[A es.Aggregate] struct {
	tb       testing.TB
	registry es.EventRegistry
	factory  es.Factory[A]
	key      string
	given    []givenCommit
	whens    []when

	ran    bool
	failed bool // the scenario could not run (reported)
	out    outcome[A]
}

type givenCommit struct {
	id     string
	events []es.Event
	stored *es.Record // GivenStored: EventType and Data only
}

type when struct {
	ctx context.Context
	cmd any
}

// outcome is what running the scenario produced.
type outcome[A es.Aggregate] struct {
	stream  es.StreamID
	head    int64      // the stream's head after the given history
	failed  int        // index of the command that failed, or -1
	err     error      // its error
	raised  []es.Event // the events the commands raised, as committed
	stored  []es.Record
	loaded  []es.Event // the stored events, decoded
	last    A          // the instance that handled the last command run
	haveAgg bool
}

// New returns a Scenario that tests the aggregates factory builds with
// registry, reporting to tb.
func New[A es.Aggregate](tb testing.TB, registry es.EventRegistry, factory es.Factory[A]) *Scenario[A] {
	tb.Helper()
	return &Scenario[A]{tb: tb, registry: registry, factory: factory, key: DefaultKey}
}

// Key sets the key of the aggregate under test (DefaultKey otherwise).
func (s *Scenario[A]) Key(key string) *Scenario[A] {
	s.key = key
	return s
}

// Given adds events to the aggregate's history, as one commit. Calling it
// several times adds several commits.
func (s *Scenario[A]) Given(events ...es.Event) *Scenario[A] {
	s.given = append(s.given, givenCommit{events: events})
	return s
}

// GivenCommit adds events to the history as one commit with the commit ID
// id, so that a command run with that command ID (WhenContext with
// eventsourcing.WithCommandID) is recognised as already applied.
func (s *Scenario[A]) GivenCommit(id string, events ...es.Event) *Scenario[A] {
	s.given = append(s.given, givenCommit{id: id, events: events})
	return s
}

// GivenStored adds to the history one event exactly as a store holds it:
// its stored type name and encoded data. Use it for events of an older
// schema, to test upcasters (see eventsourcing.Upcaster).
func (s *Scenario[A]) GivenStored(eventType string, data []byte) *Scenario[A] {
	s.given = append(s.given, givenCommit{stored: &es.Record{EventType: eventType, Data: data}})
	return s
}

// When adds a command, run with context.Background(). Each command runs on
// a fresh instance from the factory, as each request of an application
// does, after the commands before it.
func (s *Scenario[A]) When(cmd any) *Scenario[A] {
	return s.WhenContext(context.Background(), cmd)
}

// WhenContext adds a command run with ctx, which may carry a command ID
// (eventsourcing.WithCommandID: run twice, the command applies once),
// metadata or a deadline.
func (s *Scenario[A]) WhenContext(ctx context.Context, cmd any) *Scenario[A] {
	s.whens = append(s.whens, when{ctx: ctx, cmd: cmd})
	return s
}

// Then checks that every command succeeded and that together they stored
// exactly the events given, in order (none: no events at all). Events are
// compared with the ones loaded back from the store, field by field: a
// pointer and its value are the same event, times are compared as
// instants, and nil and empty slices or maps are equal.
func (s *Scenario[A]) Then(events ...es.Event) *Scenario[A] {
	s.tb.Helper()
	if !s.run() {
		return s
	}
	o := &s.out
	if o.failed >= 0 {
		s.errorf("command %d failed: %v\n%s  want %s", o.failed+1, o.err, s.context(), list(events))
		return s
	}
	if d := diffEvents(events, o.loaded); d != "" {
		s.errorf("events differ\n%s  want %s  stored %s  %s", s.context(), list(events), s.storedList(), d)
	}
	return s
}

// ThenError checks that the last command failed with an error matching
// target (errors.Is), storing nothing, after the commands before it
// succeeded.
func (s *Scenario[A]) ThenError(target error) *Scenario[A] {
	s.tb.Helper()
	if target == nil {
		s.errorf("ThenError(nil): use Then for a command that succeeds")
		return s
	}
	if !s.run() {
		return s
	}
	o := &s.out
	switch last := len(s.whens) - 1; {
	case last < 0:
		s.errorf("ThenError without a command (add one with When)")
	case o.failed < 0:
		s.errorf("the command succeeded, want an error matching %q\n%s  stored %s", target, s.context(), s.storedList())
	case o.failed < last:
		s.errorf("command %d of %d failed before the last: %v\n%s", o.failed+1, len(s.whens), o.err, s.context())
	case !errors.Is(o.err, target):
		s.errorf("the command failed with %q (%T), want an error matching %q\n%s", o.err, o.err, target, s.context())
	}
	return s
}

// ThenState calls check with the instance that handled the last command
// run (after a failed command, its state is what it was before the
// command), or, with no command, an instance loaded from the given history.
// check reports to the Scenario's testing.TB. ThenState runs the scenario
// if no Then did, without checking its outcome.
func (s *Scenario[A]) ThenState(check func(t testing.TB, a A)) *Scenario[A] {
	s.tb.Helper()
	if !s.run() {
		return s
	}
	check(s.tb, s.out.last)
	return s
}

func (s *Scenario[A]) errorf(format string, args ...any) {
	s.tb.Helper()
	s.tb.Errorf("aggregatetest: %s: "+format, append([]any{s.streamName()}, args...)...)
}

func (s *Scenario[A]) streamName() string {
	if s.out.stream != (es.StreamID{}) {
		return s.out.stream.String()
	}
	return fmt.Sprintf("key %q", s.key)
}

// context describes the history and the commands, for failure messages.
func (s *Scenario[A]) context() string {
	var b strings.Builder
	var n int
	for _, g := range s.given {
		n += len(g.events)
		if g.stored != nil {
			n++
		}
	}
	fmt.Fprintf(&b, "  given %s", plural(n, "event"))
	if n == 0 {
		b.WriteString("\n")
	} else {
		b.WriteString(":\n")
		i := 0
		for _, g := range s.given {
			if g.stored != nil {
				i++
				fmt.Fprintf(&b, "    %d. stored %q %s\n", i, g.stored.EventType, g.stored.Data)
			}
			for _, e := range g.events {
				i++
				fmt.Fprintf(&b, "    %d. %s\n", i, format(e))
			}
		}
	}
	fmt.Fprintf(&b, "  when %s:\n", plural(len(s.whens), "command"))
	for i, w := range s.whens {
		fmt.Fprintf(&b, "    %d. %s", i+1, format(w.cmd))
		if id := es.CommandIDFrom(w.ctx); id != "" {
			fmt.Fprintf(&b, " (command ID %q)", id)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// storedList lists the stored events, with their stored names where these
// are not the Go type's name.
func (s *Scenario[A]) storedList() string {
	names := make([]string, len(s.out.stored))
	for i, r := range s.out.stored {
		names[i] = r.EventType
	}
	return listNamed(s.out.loaded, names)
}

// run runs the scenario once and reports whether it could (problems are
// reported).
func (s *Scenario[A]) run() bool {
	s.tb.Helper()
	if s.ran {
		return !s.failed
	}
	s.ran = true
	if err := s.execute(); err != nil {
		s.failed = true
		s.errorf("%v", err)
	}
	return !s.failed
}

func (s *Scenario[A]) execute() error {
	s.tb.Helper()
	if s.registry == nil || s.factory == nil {
		return errors.New("New needs a registry and a factory")
	}
	back := memory.NewBackend()
	rec := &recorder{}
	store := es.Wrap(es.NewStore(back), rec.middleware)
	defer store.Close()

	probe, err := s.instance(store)
	if err != nil {
		return err
	}
	o := &s.out
	o.stream, o.failed = probe.StreamID(), -1
	if err := o.stream.Validate(); err != nil {
		return fmt.Errorf("the aggregate's stream: %w", err)
	}
	if err := s.storeGiven(back, o.stream); err != nil {
		return err
	}
	o.head = headOf(back, o.stream)

	for i, w := range s.whens {
		a, err := s.instance(store)
		if err != nil {
			return err
		}
		ctx := w.ctx
		if ctx == nil {
			ctx = context.Background()
		}
		rec.events = rec.events[:0]
		err = a.Handle(ctx, w.cmd)
		o.last, o.haveAgg = a, true
		o.raised = append(o.raised, rec.events...)
		if err != nil {
			o.failed, o.err = i, err
			break
		}
	}

	// What the commands stored, loaded back the way the aggregate loads it.
	for r, err := range back.Load(context.Background(), o.stream, o.head) {
		if err != nil {
			return fmt.Errorf("loading what the commands stored: %w", err)
		}
		e, err := es.DecodeEvent(s.registry, r)
		if err != nil {
			return fmt.Errorf("stored event %d (%s) does not load: %w\n%s", r.Sequence-o.head, r.EventType, err, s.context())
		}
		o.stored = append(o.stored, r)
		o.loaded = append(o.loaded, e)
	}
	if len(o.raised) != len(o.loaded) {
		return fmt.Errorf("the commands committed %d events but the store holds %d after the history", len(o.raised), len(o.loaded))
	}
	for i := range o.raised {
		if d := diff(o.raised[i], o.loaded[i]); d != "" {
			return fmt.Errorf("event %d does not survive the registry's codec:\n    raised %s\n    loaded %s\n  %s\n(a field the codec does not store, such as an unexported one?)\n%s",
				i+1, format(o.raised[i]), format(o.loaded[i]), d, s.context())
		}
	}

	// The state reached by handling equals the state reached by loading.
	fresh, err := s.instance(store)
	if err != nil {
		return err
	}
	if err := fresh.Refresh(context.Background()); err != nil {
		if o.failed >= 0 { // the failed command met this too; ThenError judges it
			return nil
		}
		return fmt.Errorf("loading the aggregate: %w\n%s", err, s.context())
	}
	if !o.haveAgg {
		o.last, o.haveAgg = fresh, true
		return nil
	}
	if got, want := fresh.SequenceNumber(), o.last.SequenceNumber(); got != want {
		return fmt.Errorf("the instance that handled the last command is at sequence %d, the stream at %d", want, got)
	}
	codec := s.registry.Codec()
	handled, err1 := codec.Marshal(o.last)
	loaded, err2 := codec.Marshal(fresh)
	if err1 == nil && err2 == nil && string(handled) != string(loaded) {
		return fmt.Errorf("the state after handling differs from the state after loading the stream (does a Replay method use more than its event?):\n    handled %s\n    loaded  %s\n%s",
			handled, loaded, s.context())
	}
	return nil
}

// instance builds an aggregate with the factory.
func (s *Scenario[A]) instance(store es.EventStore) (A, error) {
	a, err := s.factory(s.key, s.registry, store)
	if err != nil {
		return a, fmt.Errorf("the factory: %w", err)
	}
	if v := reflect.ValueOf(a); !v.IsValid() || (v.Kind() == reflect.Pointer && v.IsNil()) {
		return a, errors.New("the factory returned a nil aggregate")
	}
	return a, nil
}

// storeGiven appends the history to back, encoded by the registry, and
// checks that each given event decodes back to itself.
func (s *Scenario[A]) storeGiven(back backend.Backend, stream es.StreamID) error {
	ctx := context.Background()
	codec := s.registry.Codec()
	var seq int64
	n := 0
	for _, g := range s.given {
		id := g.id
		if id == "" {
			id = es.NewCommitID()
		}
		now := time.Now().UTC()
		var recs []es.Record
		if g.stored != nil {
			n++
			recs = append(recs, es.Record{Stream: stream, Sequence: seq + 1, EventType: g.stored.EventType,
				Data: g.stored.Data, Timestamp: now, CommitID: id})
		}
		for _, e := range g.events {
			n++
			t := reflect.TypeOf(e)
			if t == nil {
				return fmt.Errorf("given event %d is nil", n)
			}
			name, ok := s.registry.Name(t)
			if !ok {
				return fmt.Errorf("given event %d, %s: %w", n, format(e), es.ErrUnregisteredEvent)
			}
			data, err := codec.Marshal(e)
			if err != nil {
				return fmt.Errorf("given event %d, %s: %w: %w", n, format(e), es.ErrEncoding, err)
			}
			r := es.Record{Stream: stream, Sequence: seq + int64(len(recs)) + 1, EventType: name, Data: data, Timestamp: now, CommitID: id}
			decoded, err := es.DecodeEvent(s.registry, r)
			if err != nil {
				return fmt.Errorf("given event %d, %s, does not decode: %w", n, format(e), err)
			}
			if d := diff(e, decoded); d != "" {
				return fmt.Errorf("given event %d does not survive the registry's codec:\n    given  %s\n    loaded %s\n  %s", n, format(e), format(decoded), d)
			}
			recs = append(recs, r)
		}
		if len(recs) == 0 {
			continue
		}
		if err := back.Append(ctx, backend.Commit{Stream: stream, Expected: seq, ID: id, Records: recs}); err != nil {
			return fmt.Errorf("storing the given events: %w", err)
		}
		seq += int64(len(recs))
	}
	return nil
}

func headOf(back backend.Backend, stream es.StreamID) int64 {
	var head int64
	for r, err := range back.Load(context.Background(), stream, 0) {
		if err != nil {
			break
		}
		head = r.Sequence
	}
	return head
}

// recorder is a middleware that keeps the events of successful commits.
type recorder struct {
	events []es.Event
}

func (r *recorder) middleware(next es.EventStore) es.EventStore { return recording{next, r} }

type recording struct {
	es.EventStore
	r *recorder
}

func (s recording) Commit(ctx context.Context, c es.Commit) error {
	if err := s.EventStore.Commit(ctx, c); err != nil {
		return err
	}
	s.r.events = append(s.r.events, c.Events...)
	return nil
}

func (s recording) Unwrap() es.EventStore { return s.EventStore }
