// Package logging is an eventsourcing middleware that logs every Refresh and
// Commit, on a logrus logger (NewLogrus) or a log/slog logger (NewSlog).
//
// Each call produces one line:
//
//   - a successful call at Debug level;
//   - a failed call at Error level, except a commit that lost a concurrency
//     conflict (an error matching eventsourcing.ErrConcurrency), which is
//     logged at Warn level: a conflict stores nothing and is retried by the
//     aggregate, so it is not a failure of the service, but frequent
//     conflicts mean a hot aggregate and deserve to be seen without turning
//     on Debug.
//
// The message is "eventsourcing refresh" or "eventsourcing commit", and the
// fields are:
//
//	aggregate_type   string         the stream's aggregate type
//	key              string         the stream's key
//	sequence_before  int64          Refresh: the aggregate's sequence on entry;
//	                                Commit: the expected sequence
//	sequence_after   int64          Refresh: the aggregate's sequence on return;
//	                                Commit: the sequence the commit makes (or
//	                                would have made: on failure nothing is stored)
//	event_count      int            Refresh: events loaded and applied;
//	                                Commit: events in the commit
//	duration         time.Duration  time spent in the call, including the
//	                                middleware and store below
//	error            error          only on failure
//
// Event payloads are not logged unless asked for: WithEventTypes adds
// "event_types" (the stored type names) and WithPayloads adds "events" (the
// events as raised), on commit lines only. Payloads often carry personal
// data; enable them with care.
//
// Where the logging middleware sits in a stack decides what it measures:
// outermost (first in eventsourcing.Wrap), its duration and error cover
// every middleware below it, and a commit's line is written after the
// layers below (publication, snapshots) have run.
package logging

import (
	"context"
	"errors"
	"time"

	es "github.com/aggregatekit/eventsourcing"
)

// ErrNilLogger is returned by the constructors when given no logger.
var ErrNilLogger = errors.New("logging: nil logger")

// Field names, shared by both front-ends.
const (
	FieldAggregateType  = "aggregate_type"
	FieldKey            = "key"
	FieldSequenceBefore = "sequence_before"
	FieldSequenceAfter  = "sequence_after"
	FieldEventCount     = "event_count"
	FieldDuration       = "duration"
	FieldError          = "error"
	FieldEventTypes     = "event_types" // with WithEventTypes
	FieldEvents         = "events"      // with WithPayloads
)

// Messages of the log lines.
const (
	MessageRefresh = "eventsourcing refresh"
	MessageCommit  = "eventsourcing commit"
)

// Option configures NewLogrus and NewSlog.
type Option func(*config)

type config struct {
	eventTypes bool
	payloads   bool
	now        func() time.Time // for tests
}

// WithEventTypes adds the field "event_types" ([]string, the stored type
// names of the events, in order) to commit lines.
func WithEventTypes() Option { return func(c *config) { c.eventTypes = true } }

// WithPayloads adds the field "events" ([]any, the events as the command
// handler raised them, in order) to commit lines. The logger's formatter
// decides how they appear (a JSON formatter encodes them as JSON).
func WithPayloads() Option { return func(c *config) { c.payloads = true } }

// level is the severity of a line, mapped to each front-end's levels.
type level uint8

const (
	levelDebug level = iota
	levelWarn
	levelError
)

// entry is one log line, before a front-end formats it.
type entry struct {
	msg        string
	stream     es.StreamID
	before     int64
	after      int64
	count      int
	duration   time.Duration
	err        error
	eventTypes []string // nil unless WithEventTypes on a commit
	events     []any    // nil unless WithPayloads on a commit
}

// sink is what a front-end implements: a logger at a level.
type sink interface {
	enabled(ctx context.Context, lv level) bool
	log(ctx context.Context, lv level, e *entry)
}

func newMiddleware(s sink, opts []Option) es.Middleware {
	cfg := config{now: time.Now}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	return func(next es.EventStore) es.EventStore {
		return &store{next: next, sink: s, cfg: cfg}
	}
}

type store struct {
	next es.EventStore
	sink sink
	cfg  config
}

func levelOf(err error) level {
	switch {
	case err == nil:
		return levelDebug
	case errors.Is(err, es.ErrConcurrency):
		return levelWarn
	default:
		return levelError
	}
}

// countingLoader counts the events applied through it.
type countingLoader struct {
	es.Loader
	applied int
}

func (c *countingLoader) Apply(rec es.Record) error {
	err := c.Loader.Apply(rec)
	if err == nil {
		c.applied++
	}
	return err
}

func (s *store) Refresh(ctx context.Context, l es.Loader) error {
	if !s.sink.enabled(ctx, levelDebug) && !s.sink.enabled(ctx, levelError) {
		return s.next.Refresh(ctx, l)
	}
	cl := &countingLoader{Loader: l}
	before := l.Sequence()
	start := s.cfg.now()
	err := s.next.Refresh(ctx, cl)
	d := s.cfg.now().Sub(start)
	lv := levelOf(err)
	if s.sink.enabled(ctx, lv) {
		s.sink.log(ctx, lv, &entry{
			msg: MessageRefresh, stream: l.Stream(), before: before, after: l.Sequence(),
			count: cl.applied, duration: d, err: err,
		})
	}
	return err
}

func (s *store) Commit(ctx context.Context, w es.Writer) error {
	start := s.cfg.now()
	err := s.next.Commit(ctx, w)
	d := s.cfg.now().Sub(start)
	lv := levelOf(err)
	if !s.sink.enabled(ctx, lv) {
		return err
	}
	recs := w.Records()
	e := &entry{
		msg: MessageCommit, stream: w.Stream(), before: w.Expected(), after: w.Expected() + int64(len(recs)),
		count: len(recs), duration: d, err: err,
	}
	if s.cfg.eventTypes {
		e.eventTypes = make([]string, len(recs))
		for i, r := range recs {
			e.eventTypes[i] = r.EventType
		}
	}
	if s.cfg.payloads {
		e.events = append([]any{}, w.Events()...)
	}
	s.sink.log(ctx, lv, e)
	return err
}

func (s *store) Close() error { return s.next.Close() }
