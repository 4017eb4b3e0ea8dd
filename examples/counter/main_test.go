package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestParseConfig(t *testing.T) {
	t.Parallel()
	cfg, err := parseConfig(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:8080" || cfg.Store != "sqlite" || cfg.SQLitePath != "counter.db" || cfg.MaxCount != 1_000_000 ||
		cfg.SnapshotEvery != 100 || cfg.LogLevel != slog.LevelInfo || cfg.RequestTimeout != 5*time.Second {
		t.Errorf("defaults = %+v", cfg)
	}

	cfg, err = parseConfig([]string{"-addr", ":9000", "-max", "5"},
		env(map[string]string{"COUNTER_ADDR": ":1", "COUNTER_STORE": "dynamodb", "COUNTER_DYNAMODB_TABLE": "t", "COUNTER_LOG_LEVEL": "debug"}),
		io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != ":9000" || cfg.MaxCount != 5 { // flags win
		t.Errorf("flags: %+v", cfg)
	}
	if cfg.Store != "dynamodb" || cfg.DynamoTable != "t" || cfg.LogLevel != slog.LevelDebug { // environment fills in
		t.Errorf("environment: %+v", cfg)
	}

	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{args: []string{"-store", "cassandra"}, want: "unknown store"},
		{args: []string{"-sqlite-path", ""}, want: "-sqlite-path"},
		{args: []string{"-request-timeout", "0s"}, want: "-request-timeout"},
		{args: []string{"-max", "0"}, want: "-max"},
		{args: []string{"-snapshot-every", "-1"}, want: "-snapshot-every"},
		{args: []string{"-nope"}, want: "not defined"},
		{args: []string{"extra"}, want: "unexpected arguments"},
		{env: map[string]string{"COUNTER_MAX": "lots"}, want: "COUNTER_MAX"},
		{env: map[string]string{"COUNTER_LOG_LEVEL": "loud"}, want: "COUNTER_LOG_LEVEL"},
	} {
		if _, err := parseConfig(tc.args, env(tc.env), io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseConfig(%q, %v) = %v, want an error mentioning %q", tc.args, tc.env, err, tc.want)
		}
	}

	var help strings.Builder
	if _, err := parseConfig([]string{"-h"}, env(nil), &help); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
	if !strings.Contains(help.String(), "COUNTER_MONGO_URI") {
		t.Errorf("usage does not name the environment variables:\n%s", help.String())
	}
}

// TestRun starts the program as main does, on a free port, with a context
// that is already cancelled: it must start, shut down cleanly and return nil.
func TestRun(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	logs := &stopOnListening{cancel: cancel}
	db := filepath.Join(t.TempDir(), "c.db") // the default store: an SQLite file
	if err := run(ctx, []string{"-addr", "127.0.0.1:0", "-sqlite-path", db}, env(nil), logs); err != nil {
		t.Fatalf("run: %v\n%s", err, logs.String())
	}
	if _, err := os.Stat(db); err != nil {
		t.Errorf("the default store made no file: %v", err)
	}
	for _, want := range []string{"listening", "store=sqlite", "file=" + db, "stopped"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, logs.String())
		}
	}
	if err := run(t.Context(), []string{"-store", "nope"}, env(nil), io.Discard); err == nil {
		t.Error("run with a bad flag succeeded")
	}
}

// stopOnListening collects logs and cancels the server once it listens.
type stopOnListening struct {
	strings.Builder
	cancel context.CancelFunc
}

func (s *stopOnListening) Write(p []byte) (int, error) {
	if strings.Contains(string(p), "listening") {
		s.cancel()
	}
	return s.Builder.Write(p)
}

// gateStore holds every commit until release is closed.
type gateStore struct {
	es.EventStore
	entered  chan struct{}
	release  chan struct{}
	inFlight atomic.Int32
}

func (s *gateStore) Commit(ctx context.Context, c es.Commit) error {
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	s.entered <- struct{}{}
	<-s.release
	return s.EventStore.Commit(ctx, c)
}

// TestGracefulShutdown cancels the server's context while a request is in
// flight: the server must stop accepting connections, and return only once
// the request has finished, with 200 (after which run closes the store).
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	store := &gateStore{EventStore: es.NewStore(memory.NewBackend()), entered: make(chan struct{}), release: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := defaultConfig(t)
	cfg.ShutdownTimeout = time.Hour // the test, not a clock, decides when the request ends
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() {
		served <- serve(ctx, cfg, testLogger(t), ln, store, nil)
	}()

	url := "http://" + ln.Addr().String() + "/counters/a/increment"
	type result struct {
		status int
		body   CounterView
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Post(url, "application/json", strings.NewReader(`{"by": 2}`))
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		var v CounterView
		err = json.NewDecoder(resp.Body).Decode(&v)
		done <- result{resp.StatusCode, v, err}
	}()
	<-store.entered // the request is inside the store

	cancel()
	for { // wait until the listener is closed: shutdown has begun
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			break
		}
		conn.Close()
		time.Sleep(time.Millisecond)
	}
	close(store.release)

	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
	if n := store.inFlight.Load(); n != 0 {
		t.Errorf("serve returned with %d commits in flight", n)
	}
	r := <-done
	if r.err != nil || r.status != http.StatusOK || r.body.Count != 2 {
		t.Errorf("in-flight request: %d %+v %v, want 200 with count 2", r.status, r.body, r.err)
	}
}
