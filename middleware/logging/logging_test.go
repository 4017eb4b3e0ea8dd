package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/internal/probe"
	"github.com/aggregatekit/eventsourcing/stores/memory"
	"github.com/aggregatekit/eventsourcing/storetest"
)

// line is one captured log line, whatever the front-end.
type line struct {
	level  string // "debug", "warn", "error"
	msg    string
	fields map[string]any
	ctx    context.Context
}

// capture is a logger under test: a middleware and what it logged.
type capture struct {
	name  string
	mw    func(opts ...Option) es.Middleware
	lines func() []line
	// count converts an event count to the type the front-end logs.
	count func(n int) any
}

// tick is a fake clock advancing 1ms per reading, so that every call lasts
// exactly 1ms.
func tick() Option {
	var mu sync.Mutex
	t := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return func(c *config) {
		c.now = func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			t = t.Add(time.Millisecond)
			return t
		}
	}
}

// recordingHandler is a slog.Handler that keeps every record.
type recordingHandler struct {
	mu    *sync.Mutex
	level slog.Level
	lines *[]line
}

func (h recordingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }
func (h recordingHandler) WithAttrs([]slog.Attr) slog.Handler           { panic("not used") }
func (h recordingHandler) WithGroup(string) slog.Handler                { panic("not used") }
func (h recordingHandler) Handle(ctx context.Context, r slog.Record) error {
	ln := line{level: strings.ToLower(r.Level.String()), msg: r.Message, fields: map[string]any{}, ctx: ctx}
	r.Attrs(func(a slog.Attr) bool {
		if _, dup := ln.fields[a.Key]; dup {
			panic("duplicate attribute " + a.Key)
		}
		ln.fields[a.Key] = a.Value.Any()
		return true
	})
	h.mu.Lock()
	*h.lines = append(*h.lines, ln)
	h.mu.Unlock()
	return nil
}

func slogCapture(t *testing.T, lvl slog.Level) capture {
	var lines []line
	h := recordingHandler{mu: &sync.Mutex{}, level: lvl, lines: &lines}
	return capture{
		name: "slog",
		mw: func(opts ...Option) es.Middleware {
			mw, err := NewSlog(slog.New(h), opts...)
			if err != nil {
				t.Fatal(err)
			}
			return mw
		},
		lines: func() []line {
			h.mu.Lock()
			defer h.mu.Unlock()
			return append([]line(nil), lines...)
		},
		count: func(n int) any { return int64(n) },
	}
}

func captures(t *testing.T) []capture {
	return []capture{slogCapture(t, slog.LevelDebug)}
}

// want builds the exact fields of a line; err is matched with errors.Is.
func (c capture) want(stream es.StreamID, before, after int64, count int, err error) map[string]any {
	m := map[string]any{
		FieldAggregateType:  stream.AggregateType,
		FieldKey:            stream.Key,
		FieldSequenceBefore: before,
		FieldSequenceAfter:  after,
		FieldEventCount:     c.count(count),
		FieldDuration:       time.Millisecond,
	}
	if err != nil {
		m[FieldError] = err
	}
	return m
}

// anyID stands for a commit ID, which the aggregate generates.
type anyID struct{}

// commitWant is want for a commit line.
func (c capture) commitWant(stream es.StreamID, before, after int64, count int, err error) map[string]any {
	m := c.want(stream, before, after, count, err)
	m[FieldCommitID] = anyID{}
	return m
}

func checkLine(t *testing.T, got line, level, msg string, want map[string]any) {
	t.Helper()
	if got.level != level || got.msg != msg {
		t.Errorf("line %q at %s, want %q at %s", got.msg, got.level, msg, level)
	}
	var gk, wk []string
	for k := range got.fields {
		gk = append(gk, k)
	}
	for k := range want {
		wk = append(wk, k)
	}
	sort.Strings(gk)
	sort.Strings(wk)
	if !reflect.DeepEqual(gk, wk) {
		t.Fatalf("%s: fields %v, want exactly %v", msg, gk, wk)
	}
	for k, w := range want {
		g := got.fields[k]
		if _, ok := w.(anyID); ok {
			if id, ok := g.(string); !ok || id == "" {
				t.Errorf("%s: field %s = %#v, want a commit ID", msg, k, g)
			}
			continue
		}
		if werr, ok := w.(error); ok {
			gerr, ok := g.(error)
			if !ok || !errors.Is(gerr, werr) {
				t.Errorf("%s: field %s = %#v, want an error matching %v", msg, k, g, werr)
			}
			continue
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s: field %s = %#v (%T), want %#v (%T)", msg, k, g, g, w, w)
		}
	}
}

var ctx = context.Background()

func newProbe(t *testing.T, store es.EventStore, key string) *probe.Probe {
	t.Helper()
	p, err := probe.New(key, "", probe.NewRegistry(), store)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFieldsOfSuccessfulCalls(t *testing.T) {
	for _, c := range captures(t) {
		t.Run(c.name, func(t *testing.T) {
			store := es.Wrap(es.NewStore(memory.NewBackend()), c.mw(tick()))
			defer store.Close()
			stream := es.StreamID{AggregateType: "Probe", Key: "k1"}
			type ctxKey struct{}
			cctx := context.WithValue(ctx, ctxKey{}, "mine")
			p := newProbe(t, store, "k1")
			if err := p.Handle(cctx, probe.Add{Batch: "a", Size: 2}); err != nil {
				t.Fatal(err)
			}
			if err := p.Handle(cctx, probe.Add{Batch: "b", Size: 3}); err != nil {
				t.Fatal(err)
			}
			if err := newProbe(t, store, "k1").Refresh(cctx); err != nil {
				t.Fatal(err)
			}
			lines := c.lines()
			if len(lines) != 5 {
				t.Fatalf("%d lines, want 5: %v", len(lines), lines)
			}
			checkLine(t, lines[0], "debug", MessageRefresh, c.want(stream, 0, 0, 0, nil))
			checkLine(t, lines[1], "debug", MessageCommit, c.commitWant(stream, 0, 2, 2, nil))
			checkLine(t, lines[2], "debug", MessageRefresh, c.want(stream, 2, 2, 0, nil))
			checkLine(t, lines[3], "debug", MessageCommit, c.commitWant(stream, 2, 5, 3, nil))
			checkLine(t, lines[4], "debug", MessageRefresh, c.want(stream, 0, 5, 5, nil))
			for _, ln := range lines {
				if ln.ctx == nil || ln.ctx.Value(ctxKey{}) != "mine" {
					t.Fatalf("the committing context did not reach the logger")
				}
			}
		})
	}
}

func TestConflictIsLoggedAtWarn(t *testing.T) {
	for _, c := range captures(t) {
		t.Run(c.name, func(t *testing.T) {
			store := es.Wrap(es.NewStore(memory.NewBackend()), c.mw(tick()))
			defer store.Close()
			a, b := newProbe(t, store, "k"), newProbe(t, store, "k")
			b.SetRetryPolicy(es.RetryPolicy{MaxAttempts: 1})
			err := b.Run(ctx, func(context.Context) ([]es.Event, error) {
				// Another writer commits while b decides.
				if err := a.Handle(ctx, probe.Add{Batch: "a", Size: 1}); err != nil {
					return nil, err
				}
				return []es.Event{probe.Added{ID: "x"}, probe.Added{ID: "y"}}, nil
			})
			if !errors.Is(err, es.ErrConcurrency) {
				t.Fatalf("got %v, want a conflict", err)
			}
			stream := es.StreamID{AggregateType: "Probe", Key: "k"}
			lines := c.lines()
			if len(lines) != 4 {
				t.Fatalf("%d lines, want 4: %v", len(lines), lines)
			}
			checkLine(t, lines[0], "debug", MessageRefresh, c.want(stream, 0, 0, 0, nil))      // b
			checkLine(t, lines[1], "debug", MessageRefresh, c.want(stream, 0, 0, 0, nil))      // a
			checkLine(t, lines[2], "debug", MessageCommit, c.commitWant(stream, 0, 1, 1, nil)) // a
			checkLine(t, lines[3], "warn", MessageCommit, c.commitWant(stream, 0, 2, 2, es.ErrConcurrency))
		})
	}
}

// failing is an EventStore whose calls fail.
type failing struct{ refresh, commit error }

func (f failing) Refresh(context.Context, es.Loader) error { return f.refresh }
func (f failing) Commit(context.Context, es.Commit) error  { return f.commit }
func (f failing) Close() error                             { return nil }

var errBoom = errors.New("boom")

func TestFailuresAreLoggedAtError(t *testing.T) {
	for _, c := range captures(t) {
		t.Run(c.name, func(t *testing.T) {
			stream := es.StreamID{AggregateType: "Probe", Key: "k"}
			store := es.Wrap(failing{refresh: errBoom}, c.mw(tick()))
			if err := newProbe(t, store, "k").Handle(ctx, probe.Add{Batch: "a", Size: 1}); !errors.Is(err, errBoom) {
				t.Fatalf("got %v", err)
			}
			store = es.Wrap(failing{commit: fmt.Errorf("wrapped: %w", errBoom)}, c.mw(tick()))
			if err := newProbe(t, store, "k").Handle(ctx, probe.Add{Batch: "a", Size: 3}); !errors.Is(err, errBoom) {
				t.Fatalf("got %v", err)
			}
			lines := c.lines()
			if len(lines) != 3 {
				t.Fatalf("%d lines, want 3: %v", len(lines), lines)
			}
			checkLine(t, lines[0], "error", MessageRefresh, c.want(stream, 0, 0, 0, errBoom))
			checkLine(t, lines[1], "debug", MessageRefresh, c.want(stream, 0, 0, 0, nil))
			checkLine(t, lines[2], "error", MessageCommit, c.commitWant(stream, 0, 3, 3, errBoom))
		})
	}
}

func TestOptInEventTypesAndPayloads(t *testing.T) {
	for _, c := range captures(t) {
		t.Run(c.name, func(t *testing.T) {
			store := es.Wrap(es.NewStore(memory.NewBackend()), c.mw(tick(), WithEventTypes(), WithPayloads()))
			defer store.Close()
			p := newProbe(t, store, "k")
			if err := p.Handle(ctx, probe.Add{Batch: "a", Size: 2}); err != nil {
				t.Fatal(err)
			}
			stream := es.StreamID{AggregateType: "Probe", Key: "k"}
			lines := c.lines()
			if len(lines) != 2 {
				t.Fatalf("%d lines, want 2", len(lines))
			}
			checkLine(t, lines[0], "debug", MessageRefresh, c.want(stream, 0, 0, 0, nil)) // not on refresh
			want := c.commitWant(stream, 0, 2, 2, nil)
			want[FieldEventTypes] = []string{"Added", "Added"}
			want[FieldEvents] = []any{
				probe.Added{ID: "a-0", Batch: "a", Index: 0, Size: 2},
				probe.Added{ID: "a-1", Batch: "a", Index: 1, Size: 2},
			}
			checkLine(t, lines[1], "debug", MessageCommit, want)
		})
	}
}

func TestDebugDisabledLogsOnlyProblems(t *testing.T) {
	for _, c := range []capture{slogCapture(t, slog.LevelInfo)} {
		t.Run(c.name, func(t *testing.T) {
			inner := es.NewStore(memory.NewBackend())
			store := es.Wrap(inner, c.mw(tick()))
			p := newProbe(t, store, "k")
			if err := p.Handle(ctx, probe.Add{Batch: "a", Size: 2}); err != nil {
				t.Fatal(err)
			}
			if n := len(c.lines()); n != 0 {
				t.Fatalf("%d lines at Info level, want none", n)
			}
			_ = inner.Close()
			err := p.Handle(ctx, probe.Add{Batch: "b", Size: 1})
			if !errors.Is(err, es.ErrClosed) {
				t.Fatalf("got %v, want ErrClosed", err)
			}
			lines := c.lines()
			if len(lines) != 1 {
				t.Fatalf("%d lines, want 1", len(lines))
			}
			checkLine(t, lines[0], "error", MessageRefresh, c.want(es.StreamID{AggregateType: "Probe", Key: "k"}, 2, 2, 0, es.ErrClosed))
		})
	}
}

func TestNoPayloadByDefault(t *testing.T) {
	var buf bytes.Buffer
	mw, err := NewSlog(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	store := es.Wrap(es.NewStore(memory.NewBackend()), mw)
	defer store.Close()
	if err := newProbe(t, store, "secret-key").Handle(ctx, probe.Add{Batch: "payload-marker", Size: 1}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Contains(out, "payload-marker") || strings.Contains(out, "Added") {
		t.Fatalf("payload or event type logged without opting in:\n%s", out)
	}
	// The JSON lines carry the documented fields.
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines: %s", len(lines), out)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "time")
	if d, ok := m[FieldDuration].(float64); !ok || d < 0 {
		t.Fatalf("duration %v", m[FieldDuration])
	}
	delete(m, FieldDuration)
	want := map[string]any{
		"level": "DEBUG", "msg": MessageCommit, FieldAggregateType: "Probe", FieldKey: "secret-key", FieldCommitID: m[FieldCommitID],
		FieldSequenceBefore: 0.0, FieldSequenceAfter: 1.0, FieldEventCount: 1.0,
	}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("JSON line %v, want %v", m, want)
	}
}

func TestNilLogger(t *testing.T) {
	if _, err := NewSlog(nil); !errors.Is(err, ErrNilLogger) {
		t.Errorf("NewSlog(nil): %v", err)
	}
}

func TestConformance(t *testing.T) {
	var buf lockedBuffer
	slogMW, err := NewSlog(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), WithEventTypes())
	if err != nil {
		t.Fatal(err)
	}
	payloadMW, err := NewSlog(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), WithPayloads())
	if err != nil {
		t.Fatal(err)
	}
	storetest.RunEventStore(t, func(t *testing.T) es.EventStore {
		return es.Wrap(es.NewStore(memory.NewBackend()), slogMW, payloadMW)
	})
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}
