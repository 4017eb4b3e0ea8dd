package logging

import (
	"context"

	"github.com/sirupsen/logrus"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/internal/nilcheck"
)

// NewLogrus returns a Middleware that logs to l: a *logrus.Logger, a
// *logrus.Entry (to add fields of your own) or any logrus.FieldLogger. See
// the package documentation for the lines and fields. Sequences are logged
// as int64 values, the duration as a time.Duration and the error under
// "error" (logrus's default ErrorKey). The committing context is attached to
// the entry (Entry.Context), for hooks that use it.
//
// When l is a *logrus.Logger or a *logrus.Entry, lines below the logger's
// level are skipped before any field is built; other FieldLogger
// implementations cannot report their level, so their lines are built and
// left to logrus to filter.
//
// The middleware is safe for concurrent use if l is, as logrus loggers are.
// It fails with ErrNilLogger if l is nil, a nil pointer or an Entry without
// a Logger.
func NewLogrus(l logrus.FieldLogger, opts ...Option) (es.Middleware, error) {
	if nilcheck.IsNil(l) {
		return nil, ErrNilLogger
	}
	if e, ok := l.(*logrus.Entry); ok && e.Logger == nil {
		return nil, ErrNilLogger
	}
	return newMiddleware(logrusSink{l}, opts), nil
}

type logrusSink struct{ l logrus.FieldLogger }

func logrusLevel(lv level) logrus.Level {
	switch lv {
	case levelWarn:
		return logrus.WarnLevel
	case levelError:
		return logrus.ErrorLevel
	default:
		return logrus.DebugLevel
	}
}

func (s logrusSink) enabled(_ context.Context, lv level) bool {
	switch l := s.l.(type) {
	case *logrus.Logger:
		return l.IsLevelEnabled(logrusLevel(lv))
	case *logrus.Entry:
		return l.Logger != nil && l.Logger.IsLevelEnabled(logrusLevel(lv))
	}
	return true
}

func (s logrusSink) log(ctx context.Context, lv level, e *entry) {
	fields := make(logrus.Fields, 9)
	fields[FieldAggregateType] = e.stream.AggregateType
	fields[FieldKey] = e.stream.Key
	fields[FieldSequenceBefore] = e.before
	fields[FieldSequenceAfter] = e.after
	fields[FieldEventCount] = e.count
	fields[FieldDuration] = e.duration
	if e.err != nil {
		fields[FieldError] = e.err
	}
	if e.eventTypes != nil {
		fields[FieldEventTypes] = e.eventTypes
	}
	if e.events != nil {
		fields[FieldEvents] = e.events
	}
	entry := s.l.WithFields(fields)
	if entry == nil || entry.Logger == nil {
		return
	}
	if ctx != nil {
		entry = entry.WithContext(ctx)
	}
	entry.Log(logrusLevel(lv), e.msg)
}
