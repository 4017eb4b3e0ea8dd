package testkit

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
)

// Trace collects, in order, what the layers of a test stack saw. It is safe
// for concurrent use.
type Trace struct {
	mu    sync.Mutex
	steps []string
}

// Add notes one step.
func (tr *Trace) Add(format string, args ...any) {
	tr.mu.Lock()
	tr.steps = append(tr.steps, fmt.Sprintf(format, args...))
	tr.mu.Unlock()
}

// Take returns the steps noted since the last call and forgets them.
func (tr *Trace) Take() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	s := tr.steps
	tr.steps = nil
	return s
}

// Logger returns a logger that notes each line as "log <message>".
func (tr *Trace) Logger() *slog.Logger { return slog.New(traceHandler{tr}) }

type traceHandler struct{ tr *Trace }

func (h traceHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h traceHandler) Handle(_ context.Context, r slog.Record) error {
	h.tr.Add("log %s", r.Message)
	return nil
}
func (h traceHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h traceHandler) WithGroup(string) slog.Handler      { return h }

// ClosedAddr returns a loopback address where nothing listens (a port just
// released), for tests of unreachable servers.
func ClosedAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
