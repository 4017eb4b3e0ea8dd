// Command counter is the example server of the eventsourcing module: named
// counters kept as events, behind a small JSON API.
//
//	go run ./examples/counter
//	curl -X POST localhost:8080/counters/visits/increment
//
// It listens on 127.0.0.1:8080 and keeps events in an SQLite file,
// counter.db in the working directory, by default, so counters survive a
// restart; flags and COUNTER_* environment variables choose another file,
// memory, PostgreSQL, MongoDB or DynamoDB (run it with -h for the list, and
// see README.md).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"

	es "github.com/aggregatekit/eventsourcing"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if os.Getenv(gin.EnvGinMode) == "" {
		gin.SetMode(gin.ReleaseMode) // no debug output unless GIN_MODE asks for it
	}
	err := run(ctx, os.Args[1:], os.LookupEnv, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "counter:", err)
		stop()
		os.Exit(1)
	}
}

// run configures the server from args and the environment, serves until ctx
// ends, then shuts down gracefully. Logs go to stderr.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stderr io.Writer) (err error) {
	cfg, err := parseConfig(args, lookupEnv, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := st.close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("closing the store: %w", cerr))
		}
	}()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	attrs := []any{"addr", "http://" + ln.Addr().String(), "store", cfg.Store}
	if cfg.Store == "sqlite" {
		attrs = append(attrs, "file", cfg.SQLitePath)
	}
	listCtx, stopList := context.WithCancel(context.WithoutCancel(ctx))
	list, waitList, err := startList(listCtx, st, log)
	if err != nil {
		stopList()
		ln.Close()
		return err
	}
	defer func() { // before the store closes
		stopList()
		waitList()
	}()
	log.Info("listening", attrs...)
	return serve(ctx, cfg, log, ln, st.store, list)
}

// serve serves the API over store (and the list of counters, if not nil)
// on ln until ctx ends. Then it stops
// accepting connections and lets in-flight requests finish, for up to
// cfg.ShutdownTimeout, before it returns. It closes ln, not the store.
func serve(ctx context.Context, cfg config, log *slog.Logger, ln net.Listener, store es.EventStore, list counterList) error {
	counters, err := NewCounters(store, cfg.MaxCount, exampleRetryPolicy(), cfg.Cached)
	if err != nil {
		ln.Close()
		return err
	}
	counters = counters.withList(list)
	srv := &http.Server{
		Handler:           newRouter(counters, log, cfg.RequestTimeout),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served: // could not serve at all
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests", "timeout", cfg.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		srv.Close() // the timeout passed: drop what is left
		<-served
		return fmt.Errorf("shutdown: %w", err)
	}
	<-served // http.ErrServerClosed
	log.Info("stopped")
	return nil
}
