package publish_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/internal/probe"
	"github.com/aggregatekit/eventsourcing/middleware/publish"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

var ctx = context.Background()

// sink records published messages.
type sink struct {
	mu   sync.Mutex
	msgs []publish.Message
}

func (s *sink) handle(_ context.Context, m publish.Message) error {
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	s.mu.Unlock()
	return nil
}

func (s *sink) all() []publish.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

func (s *sink) ids() []string {
	var ids []string
	for _, m := range s.all() {
		ids = append(ids, m.Event.(probe.Added).ID)
	}
	return ids
}

// failures records what the error handler reports.
type failures struct {
	mu   sync.Mutex
	errs []*publish.Error
}

func (f *failures) handler() publish.Option {
	return publish.WithErrorHandler(func(_ context.Context, err *publish.Error) {
		f.mu.Lock()
		f.errs = append(f.errs, err)
		f.mu.Unlock()
	})
}

func (f *failures) all() []*publish.Error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.errs)
}

func newStore(t testing.TB, p publish.Publisher, opts ...publish.Option) es.EventStore {
	t.Helper()
	mw, err := publish.New(p, opts...)
	if err != nil {
		t.Fatal(err)
	}
	s := es.Wrap(es.NewStore(memory.NewBackend()), mw)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newProbe(t testing.TB, store es.EventStore, key string) *probe.Probe {
	t.Helper()
	p, err := probe.New(key, "", probe.NewRegistry(), store)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func seqs(msgs []publish.Message) []int64 {
	var out []int64
	for _, m := range msgs {
		out = append(out, m.Record.Sequence)
	}
	return out
}

func TestNewRejectsNilPublisher(t *testing.T) {
	if _, err := publish.New(nil); !errors.Is(err, publish.ErrNilPublisher) {
		t.Errorf("New(nil): %v", err)
	}
	if _, err := publish.New((*publish.Bus)(nil)); !errors.Is(err, publish.ErrNilPublisher) {
		t.Errorf("New(nil *Bus): %v", err)
	}
	if _, err := publish.New(publish.PublisherFunc(nil)); !errors.Is(err, publish.ErrNilPublisher) {
		t.Errorf("New(nil func): %v", err)
	}
}

func TestMessagesCarryRecordAndEvent(t *testing.T) {
	bus := publish.NewBus()
	var got sink
	bus.SubscribeAll(got.handle)
	store := newStore(t, bus)
	mctx := es.WithCorrelationID(ctx, "corr-1")
	p := newProbe(t, store, "k")
	if err := p.Handle(mctx, probe.Add{Batch: "a", Size: 2}); err != nil {
		t.Fatal(err)
	}
	if err := p.Handle(mctx, probe.RecordKinds{Kinds: probe.SampleKinds()}); err != nil {
		t.Fatal(err)
	}
	msgs := got.all()
	if len(msgs) != 3 {
		t.Fatalf("published %d events, want 3", len(msgs))
	}
	stream := es.StreamID{AggregateType: "Probe", Key: "k"}
	wantEvents := []es.Event{
		probe.Added{ID: "a-0", Batch: "a", Index: 0, Size: 2},
		probe.Added{ID: "a-1", Batch: "a", Index: 1, Size: 2},
		&probe.KindsRecorded{Kinds: probe.SampleKinds()}, // raised as a pointer
	}
	for i, m := range msgs {
		r := m.Record
		if r.Stream != stream || r.Sequence != int64(i+1) || r.Metadata[es.MetadataCorrelationID] != "corr-1" || r.Timestamp.IsZero() {
			t.Fatalf("message %d: record %+v", i, r)
		}
		if !reflect.DeepEqual(m.Event, wantEvents[i]) {
			t.Fatalf("message %d: event %#v, want %#v", i, m.Event, wantEvents[i])
		}
		data, _ := json.Marshal(wantEvents[i])
		if !bytes.Equal(r.Data, data) {
			t.Fatalf("message %d: data %s, want %s", i, r.Data, data)
		}
	}
	if msgs[0].Record.EventType != "Added" || msgs[2].Record.EventType != "KindsRecorded" {
		t.Fatalf("event types %q, %q", msgs[0].Record.EventType, msgs[2].Record.EventType)
	}
	if !msgs[0].Record.Timestamp.Equal(msgs[1].Record.Timestamp) {
		t.Fatal("events of one commit carry different timestamps")
	}
	// The published records are the stored ones.
	stored := load(t, store, stream)
	checkSame(t, stream, recordsOf(msgs), stored)
}

func TestOrderAcrossCommits(t *testing.T) {
	bus := publish.NewBus()
	var got sink
	var batches [][]int64
	bus.SubscribeAll(got.handle)
	store := newStore(t, publish.PublisherFunc(func(ctx context.Context, msgs []publish.Message) error {
		batches = append(batches, seqs(msgs))
		return bus.Publish(ctx, msgs)
	}))
	a, b := newProbe(t, store, "k"), newProbe(t, store, "k")
	var want []string
	for i, n := range []int{1, 3, 2, 1} {
		p := a
		if i%2 == 1 {
			p = b // two instances take turns: each refreshes first
		}
		batch := fmt.Sprintf("c%d", i)
		if err := p.Handle(ctx, probe.Add{Batch: batch, Size: n}); err != nil {
			t.Fatal(err)
		}
		for j := 0; j < n; j++ {
			want = append(want, fmt.Sprintf("%s-%d", batch, j))
		}
	}
	if got := got.ids(); !slices.Equal(got, want) {
		t.Fatalf("published %v, want %v", got, want)
	}
	if wantB := [][]int64{{1}, {2, 3, 4}, {5, 6}, {7}}; !reflect.DeepEqual(batches, wantB) {
		t.Fatalf("one Publish per commit: got %v, want %v", batches, wantB)
	}
}

type failingStore struct{ err error }

func (f failingStore) Refresh(context.Context, es.Loader) error { return nil }
func (f failingStore) Commit(context.Context, es.Commit) error  { return f.err }
func (f failingStore) Close() error                             { return nil }

func TestNothingPublishedOnFailedCommit(t *testing.T) {
	bus := publish.NewBus()
	var got sink
	bus.SubscribeAll(got.handle)
	store := newStore(t, bus)

	// Encoding error: the aggregate never reaches Commit.
	if err := newProbe(t, store, "enc").Handle(ctx, probe.AddThenFail{Batch: "x"}); !errors.Is(err, es.ErrEncoding) {
		t.Fatalf("got %v, want ErrEncoding", err)
	}
	// Conflict: the loser's events are not published.
	a, b := newProbe(t, store, "race"), newProbe(t, store, "race")
	b.SetRetryPolicy(es.RetryPolicy{MaxAttempts: 1})
	err := b.Run(ctx, func(context.Context) ([]es.Event, error) {
		if err := a.Handle(ctx, probe.Add{Batch: "win", Size: 1}); err != nil {
			return nil, err
		}
		return []es.Event{probe.Added{ID: "lose-0"}}, nil
	})
	if !errors.Is(err, es.ErrConcurrency) {
		t.Fatalf("got %v, want ErrConcurrency", err)
	}
	// A store error.
	mw, _ := publish.New(bus)
	broken := es.Wrap(failingStore{errors.New("disk on fire")}, mw)
	if err := newProbe(t, broken, "broken").Handle(ctx, probe.Add{Batch: "lost", Size: 2}); err == nil {
		t.Fatal("the failing store's commit succeeded")
	}
	if ids := got.ids(); !slices.Equal(ids, []string{"win-0"}) {
		t.Fatalf("published %v, want only the winner's event", ids)
	}
}

// A commit whose outcome is unknown may be stored: its events are not
// published (nothing here knows), but reported to the error handler, so
// that they can be reconciled (or left to a relay, which publishes what is
// stored).
func TestUnknownOutcomeIsReported(t *testing.T) {
	bus := publish.NewBus()
	var got sink
	bus.SubscribeAll(got.handle)
	var fails failures
	mw, err := publish.New(bus, fails.handler())
	if err != nil {
		t.Fatal(err)
	}
	lost := fmt.Errorf("connection reset: %w", es.ErrUnknownOutcome)
	store := es.Wrap(failingStore{lost}, mw)
	if err := newProbe(t, store, "unknown").Handle(ctx, probe.Add{Batch: "maybe", Size: 2}); !errors.Is(err, es.ErrUnknownOutcome) {
		t.Fatalf("got %v, want ErrUnknownOutcome", err)
	}
	if ids := got.ids(); len(ids) != 0 {
		t.Fatalf("published %v for a commit of unknown outcome", ids)
	}
	all := fails.all()
	if len(all) != 1 || len(all[0].Messages) != 2 || !errors.Is(all[0], es.ErrUnknownOutcome) || !errors.Is(all[0], publish.ErrNotPublished) {
		t.Fatalf("reported %v, want one *publish.Error with the 2 events, matching ErrUnknownOutcome", all)
	}
	if all[0].Messages[0].Record.CommitID == "" || all[0].Messages[0].Event == nil {
		t.Fatalf("the report lacks the commit ID or the event: %+v", all[0].Messages[0])
	}
}

func TestPublishFailureDoesNotFailTheCommand(t *testing.T) {
	bus := publish.NewBus()
	var first, second sink
	errDown := errors.New("downstream is down")
	bus.SubscribeAll(func(ctx context.Context, m publish.Message) error {
		if m.Record.Sequence == 3 {
			return errDown
		}
		return first.handle(ctx, m)
	})
	bus.SubscribeAll(second.handle)
	var f failures
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	store := newStore(t, bus, f.handler(), publish.WithLogger(logger))
	p := newProbe(t, store, "k")
	if err := p.Handle(ctx, probe.Add{Batch: "a", Size: 2}); err != nil {
		t.Fatal(err)
	}
	if err := p.Handle(ctx, probe.Add{Batch: "b", Size: 3}); err != nil {
		t.Fatalf("a publication failure failed the command: %v", err)
	}
	if p.SequenceNumber() != 5 {
		t.Fatalf("sequence %d, want 5", p.SequenceNumber())
	}
	// The failing handler misses sequence 3 and, so that it never sees a
	// gap, the rest of that commit; the other handler gets everything.
	if ids := first.ids(); !slices.Equal(ids, []string{"a-0", "a-1"}) {
		t.Fatalf("failing handler got %v", ids)
	}
	if ids := second.ids(); !slices.Equal(ids, []string{"a-0", "a-1", "b-0", "b-1", "b-2"}) {
		t.Fatalf("healthy handler got %v", ids)
	}
	errs := f.all()
	if len(errs) != 1 {
		t.Fatalf("%d failures reported, want 1", len(errs))
	}
	stream := es.StreamID{AggregateType: "Probe", Key: "k"}
	if e := errs[0]; !slices.Equal(seqs(e.Messages), []int64{3, 4, 5}) || !slices.Equal(e.Sequences(stream), []int64{3, 4, 5}) ||
		!errors.Is(e, errDown) || !errors.Is(e, publish.ErrNotPublished) {
		t.Fatalf("reported %v (sequences %v)", e, seqs(e.Messages))
	}
	if msg := errs[0].Error(); !strings.Contains(msg, "Probe/k sequence 3-5") || !strings.Contains(msg, errDown.Error()) {
		t.Fatalf("error message %q", msg)
	}
	var line map[string]any
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
		t.Fatalf("log %q: %v", logs.String(), err)
	}
	if line["level"] != "ERROR" || line["aggregate_type"] != "Probe" || line["key"] != "k" ||
		!reflect.DeepEqual(line["sequences"], []any{3.0, 4.0, 5.0}) || !strings.Contains(fmt.Sprint(line["error"]), errDown.Error()) {
		t.Fatalf("log line %v", line)
	}
}

func TestPublisherErrorsAndPanicsAreReported(t *testing.T) {
	stream := es.StreamID{AggregateType: "Probe", Key: "k"}
	for name, p := range map[string]publish.Publisher{
		"plain error": publish.PublisherFunc(func(context.Context, []publish.Message) error { return errors.New("nope") }),
		"panic":       publish.PublisherFunc(func(context.Context, []publish.Message) error { panic("oops") }),
		"partial": publish.PublisherFunc(func(_ context.Context, msgs []publish.Message) error {
			return &publish.Error{Messages: msgs[1:], Err: errors.New("second failed")}
		}),
	} {
		t.Run(name, func(t *testing.T) {
			var f failures
			store := newStore(t, p, f.handler())
			pr := newProbe(t, store, "k")
			for i := 0; i < 2; i++ {
				if err := pr.Handle(ctx, probe.Add{Batch: fmt.Sprint(i), Size: 2}); err != nil {
					t.Fatalf("Handle: %v", err)
				}
			}
			errs := f.all()
			if len(errs) != 2 {
				t.Fatalf("%d reports, want 2", len(errs))
			}
			want := [][]int64{{1, 2}, {3, 4}}
			if name == "partial" {
				want = [][]int64{{2}, {4}}
			}
			for i, e := range errs {
				if got := e.Sequences(stream); !slices.Equal(got, want[i]) {
					t.Errorf("report %d: sequences %v, want %v (%v)", i, got, want[i], e)
				}
			}
		})
	}
}

func TestPublicationIgnoresCallerCancellation(t *testing.T) {
	var gotErr error
	published := false
	mw, err := publish.New(publish.PublisherFunc(func(ctx context.Context, _ []publish.Message) error {
		published = true
		gotErr = ctx.Err()
		if v := ctx.Value(ctxKey{}); v != "value" {
			t.Errorf("context value %v lost", v)
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(context.WithValue(ctx, ctxKey{}, "value"))
	defer cancel()
	// The caller's context is cancelled after the commit, before publication.
	store := es.Wrap(es.NewStore(memory.NewBackend()), mw, func(next es.EventStore) es.EventStore { return cancelAfterCommit{next, cancel} })
	defer store.Close()
	if err := newProbe(t, store, "k").Handle(cctx, probe.Add{Batch: "a", Size: 1}); err != nil {
		t.Fatal(err)
	}
	if !published || gotErr != nil {
		t.Fatalf("published %v, publisher's context error %v", published, gotErr)
	}
}

type ctxKey struct{}

type cancelAfterCommit struct {
	es.EventStore
	cancel context.CancelFunc
}

func (a cancelAfterCommit) Commit(ctx context.Context, c es.Commit) error {
	err := a.EventStore.Commit(ctx, c)
	a.cancel()
	return err
}

// A handler may issue a command to the aggregate whose event it handles
// (through the same store): it is queued, not deadlocked, and published
// after the event being handled.
func TestHandlerCommittingToTheSameStream(t *testing.T) {
	bus := publish.NewBus()
	var got sink
	bus.SubscribeAll(got.handle)
	store := newStore(t, bus)
	var reactErr error
	publish.On(bus, func(ctx context.Context, e probe.Added, rec es.Record) error {
		if e.Batch != "cause" {
			return nil
		}
		p, err := probe.New(rec.Stream.Key, "", probe.NewRegistry(), store)
		if err != nil {
			return err
		}
		reactErr = p.Handle(ctx, probe.Add{Batch: "effect" + e.ID, Size: 1})
		return reactErr
	})
	if err := newProbe(t, store, "k").Handle(ctx, probe.Add{Batch: "cause", Size: 2}); err != nil {
		t.Fatal(err)
	}
	if reactErr != nil {
		t.Fatal(reactErr)
	}
	want := []string{"cause-0", "cause-1", "effectcause-0-0", "effectcause-1-0"}
	if ids := got.ids(); !slices.Equal(ids, want) {
		t.Fatalf("published %v, want %v", ids, want)
	}
	checkSame(t, es.StreamID{AggregateType: "Probe", Key: "k"}, recordsOf(got.all()), load(t, store, es.StreamID{AggregateType: "Probe", Key: "k"}))
}

// loader is a Loader that collects records.
type loader struct {
	stream es.StreamID
	recs   []es.Record
}

func (l *loader) Stream() es.StreamID     { return l.stream }
func (l *loader) Sequence() int64         { return int64(len(l.recs)) }
func (l *loader) State() any              { return &struct{}{} }
func (l *loader) Apply(r es.Record) error { l.recs = append(l.recs, r); return nil }
func (l *loader) Restore(int64, []byte, []string) error {
	l.recs = nil
	return es.ErrInvalidSnapshot
}
func load(t testing.TB, s es.EventStore, stream es.StreamID) []es.Record {
	t.Helper()
	l := &loader{stream: stream}
	if err := s.Refresh(ctx, l); err != nil {
		t.Fatal(err)
	}
	return l.recs
}

func recordsOf(msgs []publish.Message) []es.Record {
	out := make([]es.Record, len(msgs))
	for i, m := range msgs {
		out[i] = m.Record
	}
	return out
}

// checkSame fails unless published (all streams) holds exactly the stored
// records of stream, once each, in stream order.
func checkSame(t testing.TB, stream es.StreamID, published, stored []es.Record) {
	t.Helper()
	var mine []es.Record
	for _, r := range published {
		if r.Stream == stream {
			mine = append(mine, r)
		}
	}
	if len(mine) != len(stored) {
		t.Fatalf("%s: published %d events, stored %d", stream, len(mine), len(stored))
	}
	for i := range mine {
		p, s := mine[i], stored[i]
		if p.Sequence != s.Sequence || p.EventType != s.EventType || !bytes.Equal(p.Data, s.Data) ||
			!p.Timestamp.Equal(s.Timestamp) || !reflect.DeepEqual(p.Metadata, s.Metadata) || p.Stream != s.Stream {
			t.Fatalf("%s: published event %d is sequence %d (%s, %s), stored sequence %d (%s, %s)",
				stream, i, p.Sequence, p.EventType, p.Data, s.Sequence, s.EventType, s.Data)
		}
	}
}

type panickyHandler struct{ slog.Handler }

func (panickyHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (panickyHandler) Handle(context.Context, slog.Record) error { panic("logger broke") }

// A panic outside the Publisher (here in the logger) reaches the caller but
// does not stop later commits to the stream from being published.
func TestQueueSurvivesAPanic(t *testing.T) {
	var got sink
	fail := true
	store := newStore(t, publish.PublisherFunc(func(ctx context.Context, msgs []publish.Message) error {
		if fail {
			return errors.New("down")
		}
		for _, m := range msgs {
			_ = got.handle(ctx, m)
		}
		return nil
	}), publish.WithLogger(slog.New(panickyHandler{})))
	p := newProbe(t, store, "k")
	func() {
		defer func() {
			if r := recover(); r != "logger broke" {
				t.Fatalf("recovered %v", r)
			}
		}()
		_ = p.Handle(ctx, probe.Add{Batch: "a", Size: 1})
	}()
	fail = false
	if err := newProbe(t, store, "k").Handle(ctx, probe.Add{Batch: "b", Size: 1}); err != nil {
		t.Fatal(err)
	}
	if ids := got.ids(); !slices.Equal(ids, []string{"b-0"}) {
		t.Fatalf("published %v", ids)
	}
}
