package pgstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aggregatekit/eventsourcing/internal/testkit"
	"github.com/aggregatekit/eventsourcing/stores/pgstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// postgresURL returns the URL of the test server (see testkit).
func postgresURL(tb testing.TB) string { return testkit.Get(tb, testkit.PostgresURL) }

// newPool returns a pool of up to maxConns connections to the test server,
// closed when tb ends.
func newPool(tb testing.TB, maxConns int32) *pgxpool.Pool {
	tb.Helper()
	cfg, err := pgxpool.ParseConfig(postgresURL(tb))
	if err != nil {
		tb.Fatal(err)
	}
	cfg.MaxConns = maxConns
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

var schemas atomic.Int64

// newSchema returns the name of a schema no other test uses, dropped (with
// everything in it) when tb ends. It does not create it.
func newSchema(tb testing.TB, pool *pgxpool.Pool) string {
	tb.Helper()
	name := fmt.Sprintf("pgstore_test_%d_%d", time.Now().UnixNano()%1e9, schemas.Add(1))
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			tb.Logf("drop schema %s: %v", name, err)
		}
	})
	return name
}

// newBackend returns a Backend on pool and schema, closed when tb ends.
func newBackend(tb testing.TB, pool *pgxpool.Pool, schema string, opts ...pgstore.Option) *pgstore.Backend {
	tb.Helper()
	b, err := pgstore.NewBackend(context.Background(), pool, append([]pgstore.Option{pgstore.WithSchema(schema)}, opts...)...)
	if err != nil {
		tb.Fatalf("NewBackend: %v", err)
	}
	tb.Cleanup(func() { _ = b.Close() })
	return b
}
