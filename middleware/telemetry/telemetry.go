// Package telemetry is an eventsourcing middleware that traces and measures
// an event store with OpenTelemetry: a span per load and per commit, and
// metrics of commits, conflicts, retries, unknown outcomes, events and
// latencies.
//
//	mw, err := telemetry.New(telemetry.WithTracerProvider(tp), telemetry.WithMeterProvider(mp))
//	if err != nil { ... }
//	store := eventsourcing.Wrap(eventsourcing.NewStore(backend), mw, snapshots)
//
// Without options it uses the global providers of package otel
// (otel.GetTracerProvider, otel.GetMeterProvider), read when New is called,
// as OpenTelemetry instrumentation does; until the application installs an
// SDK they are no-ops and the middleware costs little.
//
// # Spans
//
// Each EventStore.Refresh is a span named "load <aggregate type>", each
// EventStore.Commit a span named "commit <aggregate type>", of kind
// internal, children of the span on the context (the request's). They
// carry the attributes named by the Attr* constants: the stream's
// aggregate type and key; for a load, the sequence before and after it,
// the number of events applied and the sequence of a snapshot restored; for
// a commit, the expected sequence, the first and last sequence, the number
// of events, the commit ID, whether it is a retry, and the outcome. A
// commit that lost a concurrency conflict has the outcome "conflict" and no
// error status: the aggregate retries it. An unknown outcome or any other
// failure sets the error status and records the error.
//
// # Correlation
//
// When a commit's events carry no correlation ID
// (eventsourcing.MetadataCorrelationID), the middleware records the trace
// ID of the commit's span there, so the stored events lead back to the
// trace that wrote them; WithoutCorrelation turns this off. A correlation
// ID set by the application (eventsourcing.WithCorrelationID) is kept. The
// middleware passes new records down and never modifies the commit's own.
//
// # Metrics
//
// Instruments (the Metric* constants), with the attributes aggregate type
// and, where it applies, outcome ("ok", "conflict", "unknown", "error"):
//
//   - eventsourcing.commits: commit attempts, by outcome, with the retry
//     attribute.
//   - eventsourcing.commands: first commit attempts of commands; see below.
//   - eventsourcing.commit.conflicts, eventsourcing.commit.unknown_outcomes,
//     eventsourcing.commit.retries: the attempts that lost a conflict,
//     whose outcome was lost, and that retried a conflict.
//   - eventsourcing.events.committed, eventsourcing.events.loaded: events
//     in successful commits, and events applied by loads.
//   - eventsourcing.commit.duration, eventsourcing.load.duration: latency
//     histograms in seconds, by outcome.
//
// Attribute sets are cached per aggregate type, so the number of time
// series grows with the aggregate types, never with keys.
//
// # What a store middleware sees
//
// A middleware sits between aggregates and the store: it sees every load
// and every commit attempt, and nothing else. It does not see commands as
// such: a command whose handler failed or raised no events, and a command
// repeated with a command ID the aggregate recognised as already applied,
// never reach the store, and are not counted; nor are the waits of the
// retry policy. It can tell a retry because an aggregate keeps a command's
// commit ID across its attempts: a commit attempt whose ID lost a conflict
// earlier, in this process, through this middleware, is a retry; any other
// is the first attempt of a command (eventsourcing.commands). To stay
// bounded, the middleware remembers the IDs of at most 4096 conflicting
// commits not yet retried and forgets them all when full, so a retry that
// follows more than that many unretried conflicts counts as a command.
// Where the middleware is placed decides what it times: outermost, a load
// includes the snapshot middleware's work; innermost, the store's alone.
//
// The stores the middleware returns are safe for concurrent use if the
// wrapped store is, and forward Close and Unwrap
// (eventsourcing.BackendOf reaches the backend through them).
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the tracer and the meter.
const ScopeName = "github.com/aggregatekit/eventsourcing/middleware/telemetry"

// Attribute keys of the spans and metrics.
const (
	AttrAggregateType    = "eventsourcing.aggregate.type"    // spans and metrics
	AttrKey              = "eventsourcing.aggregate.key"     // spans only
	AttrSequenceBefore   = "eventsourcing.sequence.before"   // load: the aggregate's sequence when it started
	AttrSequenceAfter    = "eventsourcing.sequence.after"    // load: its sequence at the end
	AttrSnapshotSequence = "eventsourcing.snapshot.sequence" // load: a snapshot restored at this sequence
	AttrExpected         = "eventsourcing.sequence.expected" // commit: the stream's head it expected
	AttrFirst            = "eventsourcing.sequence.first"    // commit: its first sequence
	AttrLast             = "eventsourcing.sequence.last"     // commit: its last sequence
	AttrEvents           = "eventsourcing.events"            // events applied (load) or committed (commit)
	AttrCommitID         = "eventsourcing.commit.id"         // commit: its ID
	AttrRetry            = "eventsourcing.retry"             // commit: it retries a conflict
	AttrOutcome          = "eventsourcing.outcome"           // ok, conflict, unknown or error
)

// Outcomes, the values of AttrOutcome.
const (
	OutcomeOK       = "ok"
	OutcomeConflict = "conflict" // commit lost a concurrency conflict (eventsourcing.ErrConcurrency)
	OutcomeUnknown  = "unknown"  // commit's result was lost (eventsourcing.ErrUnknownOutcome)
	OutcomeError    = "error"    // any other failure
)

// Names of the instruments.
const (
	MetricCommits         = "eventsourcing.commits"
	MetricCommands        = "eventsourcing.commands"
	MetricConflicts       = "eventsourcing.commit.conflicts"
	MetricUnknownOutcomes = "eventsourcing.commit.unknown_outcomes"
	MetricRetries         = "eventsourcing.commit.retries"
	MetricEventsCommitted = "eventsourcing.events.committed"
	MetricEventsLoaded    = "eventsourcing.events.loaded"
	MetricCommitDuration  = "eventsourcing.commit.duration"
	MetricLoadDuration    = "eventsourcing.load.duration"
)

// durationBuckets are the histogram boundaries, in seconds: from 50 µs (an
// in-memory store) to 10 s (a store timing out).
var durationBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// maxRemembered bounds the commit IDs of conflicts remembered to recognise
// retries.
const maxRemembered = 4096

// Option configures New.
type Option func(*config)

type config struct {
	tp          trace.TracerProvider
	mp          metric.MeterProvider
	correlation bool
}

// WithTracerProvider sets the provider of the tracer (the global one
// otherwise). A nil provider is ignored.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) {
		if tp != nil {
			c.tp = tp
		}
	}
}

// WithMeterProvider sets the provider of the meter (the global one
// otherwise). A nil provider is ignored.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) {
		if mp != nil {
			c.mp = mp
		}
	}
}

// WithoutCorrelation stops the middleware from recording the trace ID as
// the correlation ID of commits that have none.
func WithoutCorrelation() Option { return func(c *config) { c.correlation = false } }

// New returns the middleware. It fails only if the meter refuses to create
// an instrument.
func New(opts ...Option) (es.Middleware, error) {
	cfg := config{correlation: true}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if cfg.tp == nil {
		cfg.tp = otel.GetTracerProvider()
	}
	if cfg.mp == nil {
		cfg.mp = otel.GetMeterProvider()
	}
	in := &instruments{
		tracer:      cfg.tp.Tracer(ScopeName),
		correlation: cfg.correlation,
		retry:       retries{ids: map[string]struct{}{}},
	}
	meter := cfg.mp.Meter(ScopeName)
	var errs []error
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := meter.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	histogram := func(name, desc string) metric.Float64Histogram {
		h, err := meter.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(durationBuckets...))
		errs = append(errs, err)
		return h
	}
	in.commits = counter(MetricCommits, "{commit}", "Commit attempts, by outcome.")
	in.commands = counter(MetricCommands, "{command}", "Commands that reached the store with events (first commit attempts).")
	in.conflicts = counter(MetricConflicts, "{commit}", "Commit attempts that lost a concurrency conflict.")
	in.unknown = counter(MetricUnknownOutcomes, "{commit}", "Commit attempts whose outcome the store could not learn.")
	in.retries = counter(MetricRetries, "{commit}", "Commit attempts that retry a conflict.")
	in.committed = counter(MetricEventsCommitted, "{event}", "Events in successful commits.")
	in.loaded = counter(MetricEventsLoaded, "{event}", "Events applied by loads.")
	in.commitTime = histogram(MetricCommitDuration, "Duration of commit attempts.")
	in.loadTime = histogram(MetricLoadDuration, "Duration of loads.")
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("telemetry: creating instruments: %w", err)
	}
	return func(next es.EventStore) es.EventStore { return &store{next: next, in: in} }, nil
}

// instruments are shared by every store one middleware wraps.
type instruments struct {
	tracer      trace.Tracer
	correlation bool

	commits, commands, conflicts, unknown, retries, committed, loaded metric.Int64Counter
	commitTime, loadTime                                              metric.Float64Histogram

	sets    sync.Map // setKey -> *measure
	spans   sync.Map // aggregate type -> *spanInfo
	loaders sync.Pool
	retry   retries
}

type setKey struct {
	aggType, outcome string
	retry            int8 // 0: no attribute, 1: false, 2: true
}

// measure holds the options of one attribute set, ready to pass to Add and
// Record without allocating.
type measure struct {
	add []metric.AddOption
	rec []metric.RecordOption
}

// attrs returns the cached options of the attribute set for k.
func (in *instruments) attrs(k setKey) *measure {
	if m, ok := in.sets.Load(k); ok {
		return m.(*measure)
	}
	kv := []attribute.KeyValue{attribute.String(AttrAggregateType, k.aggType)}
	if k.outcome != "" {
		kv = append(kv, attribute.String(AttrOutcome, k.outcome))
	}
	if k.retry != 0 {
		kv = append(kv, attribute.Bool(AttrRetry, k.retry == 2))
	}
	o := metric.WithAttributeSet(attribute.NewSet(kv...))
	m, _ := in.sets.LoadOrStore(k, &measure{add: []metric.AddOption{o}, rec: []metric.RecordOption{o}})
	return m.(*measure)
}

// spanInfo is what the spans of one aggregate type share.
type spanInfo struct {
	load, commit string // span names
	start        []trace.SpanStartOption
}

// span returns the cached span names and start options of aggType.
func (in *instruments) span(aggType string) *spanInfo {
	if si, ok := in.spans.Load(aggType); ok {
		return si.(*spanInfo)
	}
	si, _ := in.spans.LoadOrStore(aggType, &spanInfo{
		load:   "load " + aggType,
		commit: "commit " + aggType,
		start: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal),
			trace.WithAttributes(attribute.String(AttrAggregateType, aggType))},
	})
	return si.(*spanInfo)
}

// retries remembers the commit IDs of conflicts until they are retried.
type retries struct {
	n   atomic.Int64 // len(ids), read without the lock
	mu  sync.Mutex
	ids map[string]struct{}
}

// conflicted notes that the commit id lost a conflict.
func (r *retries) conflicted(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.ids) >= maxRemembered {
		clear(r.ids)
	}
	r.ids[id] = struct{}{}
	r.n.Store(int64(len(r.ids)))
}

// isRetry reports whether id lost a conflict before, and forgets it.
func (r *retries) isRetry(id string) bool {
	if r.n.Load() == 0 {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.ids[id]
	if ok {
		delete(r.ids, id)
		r.n.Store(int64(len(r.ids)))
	}
	return ok
}

type store struct {
	next es.EventStore
	in   *instruments
}

// Unwrap returns the wrapped store.
func (s *store) Unwrap() es.EventStore { return s.next }

// Close closes the wrapped store.
func (s *store) Close() error { return s.next.Close() }

// Refresh loads through the wrapped store in a span, counting the events
// applied.
func (s *store) Refresh(ctx context.Context, l es.Loader) error {
	in := s.in
	stream := l.Stream()
	si := in.span(stream.AggregateType)
	ctx, span := in.tracer.Start(ctx, si.load, si.start...)
	before := l.Sequence()
	cl, _ := in.loaders.Get().(*countingLoader)
	if cl == nil {
		cl = &countingLoader{}
	}
	*cl = countingLoader{Loader: l}
	start := time.Now()
	err := s.next.Refresh(ctx, cl)
	elapsed := time.Since(start).Seconds()
	events, snap := cl.events, cl.snapshot
	*cl = countingLoader{}
	in.loaders.Put(cl)

	outcome := OutcomeOK
	if err != nil {
		outcome = OutcomeError
	}
	if events > 0 {
		in.loaded.Add(ctx, events, in.attrs(setKey{aggType: stream.AggregateType}).add...)
	}
	in.loadTime.Record(ctx, elapsed, in.attrs(setKey{aggType: stream.AggregateType, outcome: outcome}).rec...)
	if span.IsRecording() {
		attrs := []attribute.KeyValue{
			attribute.String(AttrKey, stream.Key),
			attribute.Int64(AttrSequenceBefore, before),
			attribute.Int64(AttrSequenceAfter, l.Sequence()),
			attribute.Int64(AttrEvents, events),
			attribute.String(AttrOutcome, outcome),
		}
		if snap > 0 {
			attrs = append(attrs, attribute.Int64(AttrSnapshotSequence, snap))
		}
		span.SetAttributes(attrs...)
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
	return err
}

// countingLoader counts what a load applies.
type countingLoader struct {
	es.Loader
	events   int64
	snapshot int64
}

func (l *countingLoader) Apply(rec es.Record) error {
	err := l.Loader.Apply(rec)
	if err == nil {
		l.events++
	}
	return err
}

func (l *countingLoader) Restore(seq int64, state []byte, recent []string) error {
	err := l.Loader.Restore(seq, state, recent)
	l.events = 0 // what was applied before is gone
	l.snapshot = 0
	if err == nil && state != nil {
		l.snapshot = seq
	}
	return err
}

// Commit commits through the wrapped store in a span, recording the trace
// ID as correlation ID when the commit has none.
func (s *store) Commit(ctx context.Context, c es.Commit) error {
	if len(c.Records) == 0 {
		return s.next.Commit(ctx, c)
	}
	in := s.in
	aggType := c.Stream.AggregateType
	si := in.span(aggType)
	ctx, span := in.tracer.Start(ctx, si.commit, si.start...)
	if in.correlation {
		if sc := span.SpanContext(); sc.HasTraceID() {
			c.Records = correlated(c.Records, sc.TraceID().String())
		}
	}
	retry := in.retry.isRetry(c.ID)
	start := time.Now()
	err := s.next.Commit(ctx, c)
	elapsed := time.Since(start).Seconds()

	outcome := OutcomeOK
	switch {
	case err == nil:
	case errors.Is(err, es.ErrConcurrency):
		outcome = OutcomeConflict
		in.retry.conflicted(c.ID)
	case errors.Is(err, es.ErrUnknownOutcome):
		outcome = OutcomeUnknown
	default:
		outcome = OutcomeError
	}
	r := int8(1)
	if retry {
		r = 2
	}
	in.commits.Add(ctx, 1, in.attrs(setKey{aggType: aggType, outcome: outcome, retry: r}).add...)
	plain := in.attrs(setKey{aggType: aggType}).add
	if retry {
		in.retries.Add(ctx, 1, plain...)
	} else {
		in.commands.Add(ctx, 1, plain...)
	}
	switch outcome {
	case OutcomeOK:
		in.committed.Add(ctx, int64(len(c.Records)), plain...)
	case OutcomeConflict:
		in.conflicts.Add(ctx, 1, plain...)
	case OutcomeUnknown:
		in.unknown.Add(ctx, 1, plain...)
	}
	in.commitTime.Record(ctx, elapsed, in.attrs(setKey{aggType: aggType, outcome: outcome}).rec...)

	if span.IsRecording() {
		span.SetAttributes(
			attribute.String(AttrKey, c.Stream.Key),
			attribute.Int64(AttrExpected, c.Expected),
			attribute.Int64(AttrFirst, c.First()),
			attribute.Int64(AttrLast, c.Last()),
			attribute.Int(AttrEvents, len(c.Records)),
			attribute.String(AttrCommitID, c.ID),
			attribute.Bool(AttrRetry, retry),
			attribute.String(AttrOutcome, outcome),
		)
		if err != nil && outcome != OutcomeConflict {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
	return err
}

// correlated returns records, copied with the correlation ID id added to
// their metadata, if the first has none; otherwise records itself. Records
// sharing one metadata map (as an aggregate's do) share the new one.
func correlated(records []es.Record, id string) []es.Record {
	first := records[0].Metadata
	if _, ok := first[es.MetadataCorrelationID]; ok {
		return records
	}
	md := make(es.Metadata, len(first)+1)
	maps.Copy(md, first)
	md[es.MetadataCorrelationID] = id
	out := make([]es.Record, len(records))
	for i, r := range records {
		switch {
		case maps.Equal(r.Metadata, first):
			r.Metadata = md
		default:
			if _, ok := r.Metadata[es.MetadataCorrelationID]; !ok {
				m := maps.Clone(r.Metadata)
				if m == nil {
					m = es.Metadata{}
				}
				m[es.MetadataCorrelationID] = id
				r.Metadata = m
			}
		}
		out[i] = r
	}
	return out
}
