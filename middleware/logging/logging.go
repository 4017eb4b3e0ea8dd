// Package logging is an eventsourcing middleware that logs every Refresh and
// Commit to a log/slog logger (NewSlog). For logrus, the module
// middleware/logging/logruslog adapts a logrus logger to the same lines and
// fields.
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
//	commit_id        string         Commit only: the commit's ID
//	key              string         the stream's key
//	sequence_before  int64          Refresh: the aggregate's sequence on entry;
//	                                Commit: the expected sequence
//	sequence_after   int64          Refresh: the aggregate's sequence on return;
//	                                Commit: the sequence the commit makes (or
//	                                would have made: on failure nothing is stored)
//	event_count      int            Refresh: sequence_after - sequence_before
//	                                (events applied or restored from a snapshot);
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
	"log/slog"
	"time"

	es "github.com/aggregatekit/eventsourcing"
)

// ErrNilLogger is returned by the constructors when given no logger.
var ErrNilLogger = errors.New("logging: nil logger")

// Field names of the log lines.
const (
	FieldAggregateType  = "aggregate_type"
	FieldKey            = "key"
	FieldCommitID       = "commit_id"
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

// Option configures NewSlog.
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
// handler raised them, in order) to commit lines. The logger's handler
// decides how they appear (a JSON handler encodes them as JSON).
func WithPayloads() Option { return func(c *config) { c.payloads = true } }

// NewSlog returns a Middleware that logs to l (see the package
// documentation for the lines and fields). Sequences are logged as int64
// attributes, the duration with slog.Duration and the error with slog.Any.
// The committing context is passed to l's handler. The middleware is safe for
// concurrent use. It fails with ErrNilLogger if l is nil.
func NewSlog(l *slog.Logger, opts ...Option) (es.Middleware, error) {
	if l == nil {
		return nil, ErrNilLogger
	}
	cfg := config{now: time.Now}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	return func(next es.EventStore) es.EventStore {
		return &store{next: next, l: l, cfg: cfg}
	}, nil
}

type store struct {
	next es.EventStore
	l    *slog.Logger
	cfg  config
}

// Unwrap returns the wrapped store (see eventsourcing.BackendOf).
func (s *store) Unwrap() es.EventStore { return s.next }

func levelOf(err error) slog.Level {
	switch {
	case err == nil:
		return slog.LevelDebug
	case errors.Is(err, es.ErrConcurrency):
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

func (s *store) Refresh(ctx context.Context, l es.Loader) error {
	if !s.l.Enabled(ctx, slog.LevelDebug) && !s.l.Enabled(ctx, slog.LevelError) {
		return s.next.Refresh(ctx, l)
	}
	before := l.Sequence()
	start := s.cfg.now()
	err := s.next.Refresh(ctx, l)
	d := s.cfg.now().Sub(start)
	if lv := levelOf(err); s.l.Enabled(ctx, lv) {
		after := l.Sequence()
		var buf [7]slog.Attr
		attrs := append(buf[:0],
			slog.String(FieldAggregateType, l.Stream().AggregateType),
			slog.String(FieldKey, l.Stream().Key),
			slog.Int64(FieldSequenceBefore, before),
			slog.Int64(FieldSequenceAfter, after),
			slog.Int64(FieldEventCount, after-before),
			slog.Duration(FieldDuration, d),
		)
		if err != nil {
			attrs = append(attrs, slog.Any(FieldError, err))
		}
		s.l.LogAttrs(ctx, lv, MessageRefresh, attrs...)
	}
	return err
}

func (s *store) Commit(ctx context.Context, c es.Commit) error {
	start := s.cfg.now()
	err := s.next.Commit(ctx, c)
	d := s.cfg.now().Sub(start)
	lv := levelOf(err)
	if !s.l.Enabled(ctx, lv) {
		return err
	}
	var buf [10]slog.Attr
	attrs := append(buf[:0],
		slog.String(FieldAggregateType, c.Stream.AggregateType),
		slog.String(FieldKey, c.Stream.Key),
		slog.String(FieldCommitID, c.ID),
		slog.Int64(FieldSequenceBefore, c.Expected),
		slog.Int64(FieldSequenceAfter, c.Last()),
		slog.Int64(FieldEventCount, int64(len(c.Records))),
		slog.Duration(FieldDuration, d),
	)
	if err != nil {
		attrs = append(attrs, slog.Any(FieldError, err))
	}
	if s.cfg.eventTypes {
		types := make([]string, len(c.Records))
		for i, r := range c.Records {
			types[i] = r.EventType
		}
		attrs = append(attrs, slog.Any(FieldEventTypes, types))
	}
	if s.cfg.payloads {
		attrs = append(attrs, slog.Any(FieldEvents, append([]any{}, c.Events...)))
	}
	s.l.LogAttrs(ctx, lv, MessageCommit, attrs...)
	return err
}

func (s *store) Close() error { return s.next.Close() }
