package logging

import (
	"context"
	"log/slog"

	es "github.com/aggregatekit/eventsourcing"
)

// NewSlog returns a Middleware that logs to l (see the package
// documentation for the lines and fields). Sequences are logged as int64
// attributes, the duration with slog.Duration and the error with slog.Any.
// The committing context is passed to l's handler. The middleware is safe for
// concurrent use. It fails with ErrNilLogger if l is nil.
func NewSlog(l *slog.Logger, opts ...Option) (es.Middleware, error) {
	if l == nil {
		return nil, ErrNilLogger
	}
	return newMiddleware(slogSink{l}, opts), nil
}

type slogSink struct{ l *slog.Logger }

func slogLevel(lv level) slog.Level {
	switch lv {
	case levelWarn:
		return slog.LevelWarn
	case levelError:
		return slog.LevelError
	default:
		return slog.LevelDebug
	}
}

func (s slogSink) enabled(ctx context.Context, lv level) bool {
	return s.l.Enabled(ctx, slogLevel(lv))
}

func (s slogSink) log(ctx context.Context, lv level, e *entry) {
	var buf [9]slog.Attr
	attrs := append(buf[:0],
		slog.String(FieldAggregateType, e.stream.AggregateType),
		slog.String(FieldKey, e.stream.Key),
		slog.Int64(FieldSequenceBefore, e.before),
		slog.Int64(FieldSequenceAfter, e.after),
		slog.Int(FieldEventCount, e.count),
		slog.Duration(FieldDuration, e.duration),
	)
	if e.err != nil {
		attrs = append(attrs, slog.Any(FieldError, e.err))
	}
	if e.eventTypes != nil {
		attrs = append(attrs, slog.Any(FieldEventTypes, e.eventTypes))
	}
	if e.events != nil {
		attrs = append(attrs, slog.Any(FieldEvents, e.events))
	}
	s.l.LogAttrs(ctx, slogLevel(lv), e.msg, attrs...)
}
