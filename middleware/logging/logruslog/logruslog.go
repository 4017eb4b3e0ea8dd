// Package logruslog logs the calls of an eventsourcing store to a logrus
// logger: the lines and fields of package middleware/logging (see its
// documentation), written through logrus.
//
//	mw, err := logruslog.New(logger.WithField("service", "orders"), logging.WithEventTypes())
//	store := eventsourcing.Wrap(eventsourcing.NewStore(backend), mw)
//
// It is its own module so that only applications that use logrus download it.
// Fields keep their Go types: sequences and counts are int64, the duration a
// time.Duration, the error an error under logrus's default "error" key, and
// the optional event types and payloads a []string and a []any.
package logruslog

import (
	"context"
	"errors"
	"log/slog"

	"github.com/sirupsen/logrus"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/middleware/logging"
)

// ErrNilLogger is returned by New when given no usable logger.
var ErrNilLogger = errors.New("logruslog: nil logger")

// New returns a Middleware that logs to l: a *logrus.Logger, a *logrus.Entry
// (to add fields of your own) or any logrus.FieldLogger, with the options of
// package logging. The committing context is attached to each entry
// (Entry.Context), for hooks that use it.
//
// When l is a *logrus.Logger or a *logrus.Entry, lines below the logger's
// level are skipped before any field is built; other FieldLogger
// implementations cannot report their level, so their lines are built and
// left to logrus to filter.
//
// The middleware is safe for concurrent use, as logrus loggers are. It fails
// with ErrNilLogger if l is nil, a nil pointer or an Entry without a Logger.
func New(l logrus.FieldLogger, opts ...logging.Option) (es.Middleware, error) {
	switch v := l.(type) {
	case nil:
		return nil, ErrNilLogger
	case *logrus.Logger:
		if v == nil {
			return nil, ErrNilLogger
		}
	case *logrus.Entry:
		if v == nil || v.Logger == nil {
			return nil, ErrNilLogger
		}
	}
	return logging.NewSlog(slog.New(NewHandler(l)), opts...)
}

// Handler is a slog.Handler that writes records to a logrus logger, each
// attribute as one field (groups as "group.key"). New uses it; it works
// with any slog.Logger.
type Handler struct {
	l      logrus.FieldLogger
	fields logrus.Fields // from WithAttrs
	group  string        // prefix from WithGroup, with a trailing '.'
}

// NewHandler returns a Handler writing to l.
func NewHandler(l logrus.FieldLogger) *Handler { return &Handler{l: l} }

// level maps a slog level to logrus's.
func level(l slog.Level) logrus.Level {
	switch {
	case l >= slog.LevelError:
		return logrus.ErrorLevel
	case l >= slog.LevelWarn:
		return logrus.WarnLevel
	case l >= slog.LevelInfo:
		return logrus.InfoLevel
	case l >= slog.LevelDebug:
		return logrus.DebugLevel
	}
	return logrus.TraceLevel
}

// Enabled reports whether l logs at level, when l can tell.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool {
	switch v := h.l.(type) {
	case *logrus.Logger:
		return v.IsLevelEnabled(level(l))
	case *logrus.Entry:
		return v.Logger != nil && v.Logger.IsLevelEnabled(level(l))
	}
	return true
}

// Handle writes r as one logrus entry.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	fields := make(logrus.Fields, len(h.fields)+r.NumAttrs())
	for k, v := range h.fields {
		fields[k] = v
	}
	r.Attrs(func(a slog.Attr) bool {
		addAttr(fields, h.group, a)
		return true
	})
	entry := h.l.WithFields(fields)
	if entry == nil || entry.Logger == nil {
		return nil
	}
	if ctx != nil {
		entry = entry.WithContext(ctx)
	}
	if !r.Time.IsZero() {
		entry = entry.WithTime(r.Time)
	}
	entry.Log(level(r.Level), r.Message)
	return nil
}

func addAttr(fields logrus.Fields, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, ga := range v.Group() {
			addAttr(fields, p, ga)
		}
		return
	}
	if a.Key == "" {
		return
	}
	fields[prefix+a.Key] = v.Any()
}

// WithAttrs returns a Handler that adds attrs to every entry.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	fields := make(logrus.Fields, len(h.fields)+len(attrs))
	for k, v := range h.fields {
		fields[k] = v
	}
	for _, a := range attrs {
		addAttr(fields, h.group, a)
	}
	return &Handler{l: h.l, fields: fields, group: h.group}
}

// WithGroup returns a Handler that prefixes later attributes with name.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &Handler{l: h.l, fields: h.fields, group: h.group + name + "."}
}
