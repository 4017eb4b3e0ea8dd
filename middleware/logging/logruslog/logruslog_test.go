package logruslog_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logrustest "github.com/sirupsen/logrus/hooks/test"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/internal/probe"
	"github.com/aggregatekit/eventsourcing/middleware/logging"
	"github.com/aggregatekit/eventsourcing/middleware/logging/logruslog"
	"github.com/aggregatekit/eventsourcing/stores/memory"
	"github.com/aggregatekit/eventsourcing/storetest"
)

var ctx = context.Background()

type ctxKey struct{}

func TestFieldsLevelsAndContext(t *testing.T) {
	logger, hook := logrustest.NewNullLogger()
	logger.SetLevel(logrus.DebugLevel)
	mw, err := logruslog.New(logger.WithField("component", "test"), logging.WithEventTypes(), logging.WithPayloads())
	if err != nil {
		t.Fatal(err)
	}
	store := es.Wrap(es.NewStore(memory.NewBackend()), mw)
	defer store.Close()
	cctx := context.WithValue(es.WithCommandID(ctx, "cmd-1"), ctxKey{}, "mine")
	p, _ := probe.New("k", "", probe.NewRegistry(), store)
	if err := p.Handle(cctx, probe.Add{Batch: "a", Size: 2}); err != nil {
		t.Fatal(err)
	}
	entries := hook.AllEntries()
	if len(entries) != 2 {
		t.Fatalf("%d entries, want 2", len(entries))
	}
	c := entries[1]
	if c.Level != logrus.DebugLevel || c.Message != logging.MessageCommit {
		t.Fatalf("commit entry %q at %v", c.Message, c.Level)
	}
	want := map[string]any{
		"component":                 "test",
		logging.FieldAggregateType:  "Probe",
		logging.FieldKey:            "k",
		logging.FieldCommitID:       "cmd-1",
		logging.FieldSequenceBefore: int64(0),
		logging.FieldSequenceAfter:  int64(2),
		logging.FieldEventCount:     int64(2),
		logging.FieldEventTypes:     []string{"Added", "Added"},
	}
	for k, v := range want {
		if got := c.Data[k]; !equal(got, v) {
			t.Errorf("field %s = %#v (%T), want %#v (%T)", k, got, got, v, v)
		}
	}
	if _, ok := c.Data[logging.FieldDuration].(time.Duration); !ok {
		t.Errorf("duration is %T, want time.Duration", c.Data[logging.FieldDuration])
	}
	if evs, ok := c.Data[logging.FieldEvents].([]any); !ok || len(evs) != 2 {
		t.Errorf("events: %#v", c.Data[logging.FieldEvents])
	}
	if c.Context == nil || c.Context.Value(ctxKey{}) != "mine" {
		t.Error("the committing context did not reach the entry")
	}

	// A conflict at warn, a failure at error with the error itself.
	hook.Reset()
	logger.SetLevel(logrus.InfoLevel)
	a, _ := probe.New("k", "", probe.NewRegistry(), store)
	b, _ := probe.New("k", "", probe.NewRegistry(), store)
	b.SetRetryPolicy(es.RetryPolicy{MaxAttempts: 1})
	_ = a.Refresh(ctx)
	err = b.Run(ctx, func(context.Context) ([]es.Event, error) {
		if err := a.Handle(ctx, probe.Add{Batch: "x", Size: 1}); err != nil {
			return nil, err
		}
		return []es.Event{probe.Added{ID: "y"}}, nil
	})
	if !errors.Is(err, es.ErrConcurrency) {
		t.Fatal(err)
	}
	entries = hook.AllEntries()
	if len(entries) != 1 || entries[0].Level != logrus.WarnLevel {
		t.Fatalf("at Info level: %d entries, want the conflict at warn", len(entries))
	}
	if e, ok := entries[0].Data[logrus.ErrorKey].(error); !ok || !errors.Is(e, es.ErrConcurrency) {
		t.Fatalf("error field %#v", entries[0].Data[logrus.ErrorKey])
	}
}

func equal(a, b any) bool {
	as, aok := a.([]string)
	bs, bok := b.([]string)
	if aok || bok {
		if !aok || !bok || len(as) != len(bs) {
			return false
		}
		for i := range as {
			if as[i] != bs[i] {
				return false
			}
		}
		return true
	}
	return a == b
}

// fieldLogger is a logrus.FieldLogger that is neither a Logger nor an Entry.
type fieldLogger struct{ *logrus.Logger }

func TestNilAndOtherLoggers(t *testing.T) {
	for name, l := range map[string]logrus.FieldLogger{
		"nil":                  nil,
		"nil *Logger":          (*logrus.Logger)(nil),
		"nil *Entry":           (*logrus.Entry)(nil),
		"Entry with no Logger": &logrus.Entry{},
	} {
		if _, err := logruslog.New(l); !errors.Is(err, logruslog.ErrNilLogger) {
			t.Errorf("%s: got %v, want ErrNilLogger", name, err)
		}
	}
	logger, hook := logrustest.NewNullLogger()
	logger.SetLevel(logrus.DebugLevel)
	mw, err := logruslog.New(fieldLogger{logger})
	if err != nil {
		t.Fatal(err)
	}
	store := es.Wrap(es.NewStore(memory.NewBackend()), mw)
	p, _ := probe.New("k", "", probe.NewRegistry(), store)
	if err := p.Handle(ctx, probe.Add{Batch: "a", Size: 1}); err != nil {
		t.Fatal(err)
	}
	if n := len(hook.AllEntries()); n != 2 {
		t.Fatalf("%d entries, want 2", n)
	}
}

func TestHandlerGroupsAndAttrs(t *testing.T) {
	logger, hook := logrustest.NewNullLogger()
	l := slog.New(logruslog.NewHandler(logger)).With("a", 1).WithGroup("g").With("b", "x")
	l.Info("hello", slog.Group("h", "c", true), "d", 2.5)
	e := hook.LastEntry()
	if e == nil || e.Message != "hello" || e.Level != logrus.InfoLevel {
		t.Fatalf("entry %+v", e)
	}
	for k, v := range map[string]any{"a": int64(1), "g.b": "x", "g.h.c": true, "g.d": 2.5} {
		if e.Data[k] != v {
			t.Errorf("field %s = %#v, want %#v", k, e.Data[k], v)
		}
	}
}

func TestConformance(t *testing.T) {
	logger, _ := logrustest.NewNullLogger()
	logger.SetLevel(logrus.DebugLevel)
	mw, err := logruslog.New(logger, logging.WithPayloads())
	if err != nil {
		t.Fatal(err)
	}
	storetest.RunEventStore(t, func(t *testing.T) es.EventStore {
		return es.Wrap(es.NewStore(memory.NewBackend()), mw)
	})
}
