package telemetry_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sort"
	"strings"
	"testing"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/internal/probe"
	"github.com/aggregatekit/eventsourcing/middleware/snapshot"
	"github.com/aggregatekit/eventsourcing/middleware/telemetry"
	"github.com/aggregatekit/eventsourcing/stores/memory"
	"github.com/aggregatekit/eventsourcing/storetest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// sdk is an OpenTelemetry SDK set up for a test: spans go to an in-memory
// exporter as they end, metrics to a manual reader.
type sdk struct {
	spans  *tracetest.InMemoryExporter
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

func newSDK(t testing.TB) *sdk {
	s := &sdk{spans: tracetest.NewInMemoryExporter(), reader: sdkmetric.NewManualReader()}
	s.tp = sdktrace.NewTracerProvider(sdktrace.WithSyncer(s.spans))
	s.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(s.reader))
	t.Cleanup(func() {
		_ = s.tp.Shutdown(context.Background())
		_ = s.mp.Shutdown(context.Background())
	})
	return s
}

func (s *sdk) middleware(t testing.TB, opts ...telemetry.Option) es.Middleware {
	t.Helper()
	mw, err := telemetry.New(append([]telemetry.Option{telemetry.WithTracerProvider(s.tp), telemetry.WithMeterProvider(s.mp)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return mw
}

// metrics returns the value of every data point as "name{k=v,...}": the
// sum of a counter, the count of a histogram.
func (s *sdk) metrics(t testing.TB) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := s.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	name := func(m string, set attribute.Set) string {
		var kv []string
		for _, a := range set.ToSlice() {
			if a.Key != telemetry.AttrAggregateType {
				kv = append(kv, string(a.Key)+"="+a.Value.String())
			}
		}
		sort.Strings(kv)
		return m + "{" + strings.Join(kv, ",") + "}"
	}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != telemetry.ScopeName {
			t.Errorf("instrumentation scope %q", sm.Scope.Name)
		}
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[name(m.Name, p.Attributes)] += p.Value
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[name(m.Name, p.Attributes)] += int64(p.Count)
				}
			default:
				t.Errorf("metric %s has data %T", m.Name, m.Data)
			}
		}
	}
	return out
}

// attrs returns a span's attributes as strings.
func attrs(s tracetest.SpanStub) map[string]string {
	out := map[string]string{}
	for _, a := range s.Attributes {
		out[string(a.Key)] = a.Value.String()
	}
	return out
}

func checkAttrs(t *testing.T, s tracetest.SpanStub, want map[string]string) {
	t.Helper()
	got := attrs(s)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("span %s: %s = %q, want %q (all: %v)", s.Name, k, got[k], v, got)
		}
	}
}

func checkMetrics(t *testing.T, got map[string]int64, want map[string]int64) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d", k, got[k], v)
		}
	}
	if t.Failed() {
		t.Logf("all metrics: %v", got)
	}
}

func newProbe(t *testing.T, key string, store es.EventStore) *probe.Probe {
	t.Helper()
	p, err := probe.New(key, "", probe.NewRegistry(), store)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func loadRecords(t *testing.T, b *memory.Backend, key string) []es.Record {
	t.Helper()
	var out []es.Record
	for r, err := range b.Load(context.Background(), es.StreamID{AggregateType: "Probe", Key: key}, 0) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func TestSpansAndMetrics(t *testing.T) {
	o := newSDK(t)
	back := memory.NewBackend()
	store := es.Wrap(es.NewStore(back), o.middleware(t))
	ctx, request := o.tp.Tracer("test").Start(context.Background(), "request")
	p := newProbe(t, "k", store)
	if err := p.Handle(ctx, probe.Add{Batch: "a", Size: 2}); err != nil {
		t.Fatal(err)
	}
	if err := p.Handle(ctx, probe.Add{Batch: "b", Size: 1}); err != nil {
		t.Fatal(err)
	}
	if err := newProbe(t, "k", store).Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	request.End()

	spans := o.spans.GetSpans()
	var names []string
	for _, s := range spans {
		names = append(names, s.Name)
		if s.Name != "request" && s.Parent.SpanID() != request.SpanContext().SpanID() {
			t.Errorf("span %s is not a child of the request", s.Name)
		}
		if s.Name != "request" && (s.SpanKind != trace.SpanKindInternal || s.InstrumentationScope.Name != telemetry.ScopeName) {
			t.Errorf("span %s: kind %v scope %q", s.Name, s.SpanKind, s.InstrumentationScope.Name)
		}
	}
	if got := strings.Join(names, ","); got != "load Probe,commit Probe,load Probe,commit Probe,load Probe,request" {
		t.Fatalf("spans %s", got)
	}
	recs := loadRecords(t, back, "k")
	checkAttrs(t, spans[1], map[string]string{
		telemetry.AttrAggregateType: "Probe", telemetry.AttrKey: "k", telemetry.AttrExpected: "0", telemetry.AttrFirst: "1",
		telemetry.AttrLast: "2", telemetry.AttrEvents: "2", telemetry.AttrCommitID: recs[0].CommitID,
		telemetry.AttrRetry: "false", telemetry.AttrOutcome: "ok",
	})
	checkAttrs(t, spans[3], map[string]string{telemetry.AttrExpected: "2", telemetry.AttrFirst: "3", telemetry.AttrLast: "3", telemetry.AttrCommitID: recs[2].CommitID})
	checkAttrs(t, spans[2], map[string]string{telemetry.AttrSequenceBefore: "2", telemetry.AttrSequenceAfter: "2", telemetry.AttrEvents: "0", telemetry.AttrOutcome: "ok"})
	checkAttrs(t, spans[4], map[string]string{telemetry.AttrKey: "k", telemetry.AttrSequenceBefore: "0", telemetry.AttrSequenceAfter: "3", telemetry.AttrEvents: "3"})
	if _, ok := attrs(spans[4])[telemetry.AttrSnapshotSequence]; ok {
		t.Error("a load without snapshot names a snapshot sequence")
	}
	// The request's trace ID is the commits' correlation ID.
	for _, r := range recs {
		if got := r.Metadata[es.MetadataCorrelationID]; got != request.SpanContext().TraceID().String() {
			t.Fatalf("event %d has correlation ID %q, want the trace ID %s", r.Sequence, got, request.SpanContext().TraceID())
		}
	}

	checkMetrics(t, o.metrics(t), map[string]int64{
		"eventsourcing.commits{eventsourcing.outcome=ok,eventsourcing.retry=false}": 2,
		"eventsourcing.commands{}":                                2,
		"eventsourcing.events.committed{}":                        3,
		"eventsourcing.events.loaded{}":                           3,
		"eventsourcing.commit.duration{eventsourcing.outcome=ok}": 2,
		"eventsourcing.load.duration{eventsourcing.outcome=ok}":   3,
		"eventsourcing.commit.conflicts{}":                        0,
		"eventsourcing.commit.retries{}":                          0,
	})
}

func TestConflictsAndRetries(t *testing.T) {
	o := newSDK(t)
	store := es.Wrap(es.NewStore(memory.NewBackend()), o.middleware(t))
	ctx := context.Background()
	a, b := newProbe(t, "k", store), newProbe(t, "k", store)
	calls := 0
	err := b.Run(ctx, func(context.Context) ([]es.Event, error) {
		calls++
		if calls == 1 { // another writer commits while b decides
			if err := a.Handle(ctx, probe.Add{Batch: "a", Size: 1}); err != nil {
				return nil, err
			}
		}
		return []es.Event{probe.Added{ID: "b"}}, nil
	})
	if err != nil || calls != 2 {
		t.Fatalf("Run: %v after %d attempts", err, calls)
	}
	checkMetrics(t, o.metrics(t), map[string]int64{
		"eventsourcing.commits{eventsourcing.outcome=ok,eventsourcing.retry=false}":       1,
		"eventsourcing.commits{eventsourcing.outcome=conflict,eventsourcing.retry=false}": 1,
		"eventsourcing.commits{eventsourcing.outcome=ok,eventsourcing.retry=true}":        1,
		"eventsourcing.commands{}":                                      2,
		"eventsourcing.commit.conflicts{}":                              1,
		"eventsourcing.commit.retries{}":                                1,
		"eventsourcing.events.committed{}":                              2,
		"eventsourcing.commit.duration{eventsourcing.outcome=conflict}": 1,
	})
	var commits []tracetest.SpanStub
	for _, s := range o.spans.GetSpans() {
		if s.Name == "commit Probe" {
			commits = append(commits, s)
		}
	}
	if len(commits) != 3 {
		t.Fatalf("%d commit spans", len(commits))
	}
	checkAttrs(t, commits[1], map[string]string{telemetry.AttrOutcome: "conflict", telemetry.AttrRetry: "false", telemetry.AttrExpected: "0"})
	checkAttrs(t, commits[2], map[string]string{telemetry.AttrOutcome: "ok", telemetry.AttrRetry: "true", telemetry.AttrExpected: "1",
		telemetry.AttrCommitID: attrs(commits[1])[telemetry.AttrCommitID]})
	if commits[1].Status.Code != codes.Unset {
		t.Errorf("a conflict, which the aggregate retries, has status %v", commits[1].Status)
	}
}

// lostReply stores the commit, then reports ErrUnknownOutcome.
type lostReply struct{ es.EventStore }

func (l lostReply) Commit(ctx context.Context, c es.Commit) error {
	if err := l.EventStore.Commit(ctx, c); err != nil {
		return err
	}
	return fmt.Errorf("connection reset: %w", es.ErrUnknownOutcome)
}

// failingBackend fails every load.
type failingBackend struct{ *memory.Backend }

var errDisk = errors.New("disk on fire")

func (failingBackend) Load(context.Context, es.StreamID, int64) iter.Seq2[es.Record, error] {
	return func(yield func(es.Record, error) bool) { yield(es.Record{}, errDisk) }
}

func TestFailures(t *testing.T) {
	o := newSDK(t)
	ctx := context.Background()
	p := newProbe(t, "k", es.Wrap(lostReply{es.NewStore(memory.NewBackend())}, o.middleware(t)))
	if err := p.Handle(ctx, probe.Add{Batch: "a", Size: 1}); !errors.Is(err, es.ErrUnknownOutcome) {
		t.Fatalf("got %v", err)
	}
	q := newProbe(t, "k", es.Wrap(es.NewStore(failingBackend{memory.NewBackend()}), o.middleware(t)))
	if err := q.Refresh(ctx); !errors.Is(err, errDisk) {
		t.Fatalf("got %v", err)
	}
	// Encoding fails before the store: nothing reaches the middleware.
	if err := p.Handle(ctx, probe.AddThenFail{Batch: "x"}); !errors.Is(err, es.ErrEncoding) {
		t.Fatalf("got %v", err)
	}
	checkMetrics(t, o.metrics(t), map[string]int64{
		"eventsourcing.commits{eventsourcing.outcome=unknown,eventsourcing.retry=false}": 1,
		"eventsourcing.commit.unknown_outcomes{}":                                        1,
		"eventsourcing.events.committed{}":                                               0,
		"eventsourcing.load.duration{eventsourcing.outcome=error}":                       1,
		"eventsourcing.commands{}":                                                       1,
	})
	for _, s := range o.spans.GetSpans() {
		switch s.Name {
		case "commit Probe":
			checkAttrs(t, s, map[string]string{telemetry.AttrOutcome: "unknown"})
			if s.Status.Code != codes.Error || !strings.Contains(s.Status.Description, "connection reset") || len(s.Events) != 1 {
				t.Errorf("unknown outcome: status %v, %d events", s.Status, len(s.Events))
			}
		case "load Probe":
			if attrs(s)[telemetry.AttrOutcome] == "error" && (s.Status.Code != codes.Error || !strings.Contains(s.Status.Description, "disk on fire")) {
				t.Errorf("failed load: status %v", s.Status)
			}
		}
	}
}

// keepRecords is a middleware above telemetry that keeps the records it
// passes down, to check that they are not modified.
type keepRecords struct {
	es.EventStore
	seen []es.Record
}

func (k *keepRecords) Commit(ctx context.Context, c es.Commit) error {
	k.seen = append(k.seen, c.Records...)
	return k.EventStore.Commit(ctx, c)
}

func TestCorrelation(t *testing.T) {
	ctx := context.Background()
	for name, tc := range map[string]struct {
		opts   []telemetry.Option
		ctx    context.Context
		noSDK  bool
		want   func(o *sdk) string
		keepMD bool
	}{
		"root span": {want: func(o *sdk) string {
			for _, s := range o.spans.GetSpans() {
				if s.Name == "commit Probe" {
					return s.SpanContext.TraceID().String()
				}
			}
			return "no commit span"
		}},
		"set by the application": {ctx: es.WithCorrelationID(ctx, "req-1"), want: func(*sdk) string { return "req-1" }},
		"turned off":             {opts: []telemetry.Option{telemetry.WithoutCorrelation()}, want: func(*sdk) string { return "" }},
		"no SDK":                 {noSDK: true, want: func(*sdk) string { return "" }},
	} {
		t.Run(name, func(t *testing.T) {
			o := newSDK(t)
			var mw es.Middleware
			if tc.noSDK {
				var err error
				if mw, err = telemetry.New(); err != nil { // the global providers: no-ops
					t.Fatal(err)
				}
			} else {
				mw = o.middleware(t, tc.opts...)
			}
			back := memory.NewBackend()
			keep := &keepRecords{EventStore: es.Wrap(es.NewStore(back), mw)}
			c := tc.ctx
			if c == nil {
				c = es.WithMetadata(ctx, "tenant", "t1")
			}
			if err := newProbe(t, "k", keep).Handle(c, probe.Add{Batch: "a", Size: 3}); err != nil {
				t.Fatal(err)
			}
			want := tc.want(o)
			for _, r := range loadRecords(t, back, "k") {
				got, ok := r.Metadata[es.MetadataCorrelationID]
				if got != want || ok != (want != "") {
					t.Fatalf("event %d: correlation ID %q (%v), want %q", r.Sequence, got, ok, want)
				}
				if tc.ctx == nil && r.Metadata["tenant"] != "t1" {
					t.Fatalf("event %d lost the other metadata: %v", r.Sequence, r.Metadata)
				}
			}
			for _, r := range keep.seen {
				if _, ok := r.Metadata[es.MetadataCorrelationID]; ok && tc.ctx == nil {
					t.Fatalf("the commit's own records were modified: %v", r.Metadata)
				}
			}
		})
	}
}

// The middleware passes the store conformance suite, alone and over the
// snapshot middleware, and the upcasting suite.
func TestConformance(t *testing.T) {
	o := newSDK(t)
	mw := o.middleware(t)
	t.Run("alone", func(t *testing.T) {
		storetest.RunEventStore(t, func(*testing.T) es.EventStore { return es.Wrap(es.NewStore(memory.NewBackend()), mw) })
	})
	t.Run("over snapshots", func(t *testing.T) {
		snaps, err := snapshot.New(memory.NewSnapshotStore(), snapshot.EveryN(3))
		if err != nil {
			t.Fatal(err)
		}
		storetest.RunEventStore(t, func(*testing.T) es.EventStore { return es.Wrap(es.NewStore(memory.NewBackend()), mw, snaps) })
	})
	got := o.metrics(t)
	if got["eventsourcing.commit.conflicts{}"] == 0 || got["eventsourcing.commit.retries{}"] == 0 {
		t.Errorf("the suite's racing writers left no conflicts or retries: %v", got)
	}
}

// A snapshot restored under the middleware is named on the load span.
func TestSnapshotOnLoadSpan(t *testing.T) {
	o := newSDK(t)
	snaps, err := snapshot.New(memory.NewSnapshotStore(), snapshot.EveryN(2))
	if err != nil {
		t.Fatal(err)
	}
	store := es.Wrap(es.NewStore(memory.NewBackend()), o.middleware(t), snaps)
	ctx := context.Background()
	p := newProbe(t, "k", store)
	for i := 0; i < 3; i++ {
		if err := p.Handle(ctx, probe.Add{Batch: fmt.Sprint(i), Size: 1}); err != nil {
			t.Fatal(err)
		}
	}
	o.spans.Reset()
	if err := newProbe(t, "k", store).Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	spans := o.spans.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans", len(spans))
	}
	checkAttrs(t, spans[0], map[string]string{telemetry.AttrSnapshotSequence: "2", telemetry.AttrEvents: "1", telemetry.AttrSequenceAfter: "3"})
}

func TestBackendOfAndClose(t *testing.T) {
	o := newSDK(t)
	back := memory.NewBackend()
	store := es.Wrap(es.NewStore(back), o.middleware(t))
	if es.BackendOf(store) != es.Backend(back) {
		t.Fatal("BackendOf does not reach the backend through the middleware")
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	if err := newProbe(t, "k", store).Refresh(context.Background()); !errors.Is(err, es.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if _, err := telemetry.New(nil, telemetry.WithTracerProvider(nil), telemetry.WithMeterProvider(nil)); err != nil {
		t.Fatalf("nil options: %v", err)
	}
}
