package publish_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/internal/probe"
	"github.com/aggregatekit/eventsourcing/middleware/logging"
	"github.com/aggregatekit/eventsourcing/middleware/publish"
	"github.com/aggregatekit/eventsourcing/stores/memory"
	"github.com/aggregatekit/eventsourcing/storetest"
)

// trace is a shared log of what each layer of a stack saw, in order.
type trace struct {
	mu    sync.Mutex
	steps []string
}

func (tr *trace) add(format string, args ...any) {
	tr.mu.Lock()
	tr.steps = append(tr.steps, fmt.Sprintf(format, args...))
	tr.mu.Unlock()
}

func (tr *trace) take() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	s := tr.steps
	tr.steps = nil
	return s
}

// recording is a middleware that notes calls entering and leaving it.
func (tr *trace) recording(name string) es.Middleware {
	return func(next es.EventStore) es.EventStore { return recorder{next, name, tr} }
}

type recorder struct {
	next es.EventStore
	name string
	tr   *trace
}

func (r recorder) Refresh(ctx context.Context, l es.Loader) error {
	r.tr.add("%s > refresh", r.name)
	err := r.next.Refresh(ctx, l)
	r.tr.add("%s < refresh", r.name)
	return err
}

func (r recorder) Commit(ctx context.Context, c es.Commit) error {
	r.tr.add("%s > commit", r.name)
	err := r.next.Commit(ctx, c)
	r.tr.add("%s < commit", r.name)
	return err
}

func (r recorder) Close() error {
	r.tr.add("%s close", r.name)
	return r.next.Close()
}

// traceHandler is a slog.Handler that notes each line in the trace.
type traceHandler struct{ tr *trace }

func (h traceHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h traceHandler) Handle(_ context.Context, r slog.Record) error {
	h.tr.add("log %q", r.Message)
	return nil
}
func (h traceHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h traceHandler) WithGroup(string) slog.Handler      { return h }

// TestStackOrder shows the order documented by es.Wrap on the stack
// Wrap(store, logging, publish), with recording middlewares around and
// between them: the first middleware is the outermost, so a call reaches
// logging first, then publish, then the store; publish publishes after the
// store committed, and logging writes its line last, when the call returns
// to it, so its duration covers the publication.
func TestStackOrder(t *testing.T) {
	var tr trace
	logMW, err := logging.NewSlog(slog.New(traceHandler{&tr}))
	if err != nil {
		t.Fatal(err)
	}
	bus := publish.NewBus()
	bus.SubscribeAll(func(_ context.Context, m publish.Message) error {
		tr.add("publish %s %d", m.Record.EventType, m.Record.Sequence)
		return nil
	})
	pubMW, err := publish.New(bus)
	if err != nil {
		t.Fatal(err)
	}
	store := es.Wrap(es.NewStore(memory.NewBackend()), tr.recording("A"), logMW, tr.recording("B"), pubMW, tr.recording("C"))
	p := newProbe(t, store, "k")
	if err := p.Handle(ctx, probe.Add{Batch: "a", Size: 2}); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"A > refresh", "B > refresh", "C > refresh", "C < refresh", "B < refresh", `log "eventsourcing refresh"`, "A < refresh",
		"A > commit", "B > commit", "C > commit", "C < commit", "publish Added 1", "publish Added 2", "B < commit", `log "eventsourcing commit"`, "A < commit",
		"A close", "B close", "C close",
	}
	if got := tr.take(); !slices.Equal(got, want) {
		t.Fatalf("stack order:\n got  %q\n want %q", got, want)
	}
}

// The stack Wrap(store, logging, publish) passes the conformance suite, and
// publishes exactly what it stores.
func TestStackConformance(t *testing.T) {
	logMW, err := logging.NewSlog(slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	storetest.RunEventStore(t, func(t *testing.T) es.EventStore { return es.Wrap(verifiedStore(t), logMW) })
}
