package pgstore_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/stores/pgstore"
	"github.com/jackc/pgx/v5"
)

// Many processes starting at once on an empty database: every EnsureSchema
// succeeds (the advisory lock keeps the creators from colliding in the
// catalogs), and the schema is created once, at SchemaVersion.
func TestEnsureSchemaConcurrently(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin := newPool(t, 2)
	for round := 0; round < 3; round++ {
		schema := newSchema(t, admin)
		const starters = 8
		var wg sync.WaitGroup
		errs := make(chan error, starters)
		for i := 0; i < starters; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				pool := newPool(t, 1) // a process of its own
				if i%2 == 0 {
					errs <- pgstore.EnsureSchema(ctx, pool, pgstore.WithSchema(schema))
					return
				}
				b, err := pgstore.NewBackend(ctx, pool, pgstore.WithSchema(schema))
				if err == nil {
					err = b.Close()
				}
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: concurrent EnsureSchema: %v", round, err)
			}
		}
		var n, version int
		if err := admin.QueryRow(ctx, `SELECT count(*), max(version) FROM `+pgx.Identifier{schema, "schema_version"}.Sanitize()).Scan(&n, &version); err != nil {
			t.Fatal(err)
		}
		if n != 1 || version != pgstore.SchemaVersion {
			t.Fatalf("schema_version holds %d rows, version %d; want 1 row, version %d", n, version, pgstore.SchemaVersion)
		}
	}
}

func TestWithoutSchemaCreation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t, 2)
	schema := newSchema(t, pool)
	opts := []pgstore.Option{pgstore.WithSchema(schema), pgstore.WithoutSchemaCreation()}
	if _, err := pgstore.NewBackend(ctx, pool, opts...); !errors.Is(err, pgstore.ErrSchemaMissing) {
		t.Fatalf("NewBackend on a missing schema: got %v, want ErrSchemaMissing", err)
	}
	if _, err := pgstore.NewSnapshotStore(ctx, pool, opts...); !errors.Is(err, pgstore.ErrSchemaMissing) {
		t.Fatalf("NewSnapshotStore on a missing schema: got %v, want ErrSchemaMissing", err)
	}
	if err := pgstore.EnsureSchema(ctx, pool, opts...); !errors.Is(err, pgstore.ErrSchemaMissing) {
		t.Fatalf("EnsureSchema(WithoutSchemaCreation) on a missing schema: got %v, want ErrSchemaMissing", err)
	}
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil || exists {
		t.Fatalf("verification created the schema (exists %v, err %v)", exists, err)
	}
	// An operator creates it; then construction only verifies.
	if err := pgstore.EnsureSchema(ctx, pool, pgstore.WithSchema(schema)); err != nil {
		t.Fatal(err)
	}
	b, err := pgstore.NewBackend(ctx, pool, opts...)
	if err != nil {
		t.Fatalf("NewBackend on an existing schema: %v", err)
	}
	_ = b.Close()
	// A table dropped by hand is reported by name.
	if _, err := pool.Exec(ctx, `DROP TABLE `+pgx.Identifier{schema, "checkpoints"}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	_, err = pgstore.NewBackend(ctx, pool, opts...)
	if !errors.Is(err, pgstore.ErrSchemaMissing) || !strings.Contains(err.Error(), "checkpoints") {
		t.Fatalf("a missing table: got %v, want ErrSchemaMissing naming it", err)
	}
	// Without the option, construction recreates it.
	if b, err = pgstore.NewBackend(ctx, pool, pgstore.WithSchema(schema)); err != nil {
		t.Fatalf("NewBackend recreating a table: %v", err)
	}
	_ = b.Close()
}

func TestSchemaOfAnotherVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t, 4)
	schema := newSchema(t, pool)
	b := newBackend(t, pool, schema)
	s := backend.StreamID{AggregateType: "Probe", Key: "versioned"}
	if err := b.Append(ctx, testCommit(s, 0, 2, "v-1")); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE `+pgx.Identifier{schema, "schema_version"}.Sanitize()+` SET version = 2`); err != nil {
		t.Fatal(err)
	}
	for _, opts := range [][]pgstore.Option{{pgstore.WithSchema(schema)}, {pgstore.WithSchema(schema), pgstore.WithoutSchemaCreation()}} {
		_, err := pgstore.NewBackend(ctx, pool, opts...)
		if !errors.Is(err, pgstore.ErrSchemaVersion) || !strings.Contains(err.Error(), "version 2") {
			t.Fatalf("NewBackend on a version 2 schema: got %v, want ErrSchemaVersion naming the version", err)
		}
		if _, err := pgstore.NewSnapshotStore(ctx, pool, opts...); !errors.Is(err, pgstore.ErrSchemaVersion) {
			t.Fatalf("NewSnapshotStore on a version 2 schema: got %v, want ErrSchemaVersion", err)
		}
	}
	if n := len(loadAll(t, b, s)); n != 2 {
		t.Fatalf("refusing the schema changed the data: %d events, want 2", n)
	}
}

// A schema that has tables named like the store's but was not made by
// EnsureSchema is refused, not adopted.
func TestForeignSchemaRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t, 2)
	schema := newSchema(t, pool)
	if _, err := pool.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()+`; CREATE TABLE `+pgx.Identifier{schema, "events"}.Sanitize()+` (id int)`); err != nil {
		t.Fatal(err)
	}
	if _, err := pgstore.NewBackend(ctx, pool, pgstore.WithSchema(schema)); !errors.Is(err, pgstore.ErrSchemaVersion) {
		t.Fatalf("a foreign events table: got %v, want ErrSchemaVersion", err)
	}
	var versioned bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, pgx.Identifier{schema, "schema_version"}.Sanitize()).Scan(&versioned); err != nil || versioned {
		t.Fatalf("the refused schema was changed (schema_version created: %v, %v)", versioned, err)
	}
}

// A schema dropped while a Backend runs: every operation fails with an
// error matching ErrSchemaMissing that names the stream.
func TestSchemaDroppedUnderBackend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t, 4)
	schema := newSchema(t, pool)
	b := newBackend(t, pool, schema)
	snaps, err := pgstore.NewSnapshotStore(ctx, pool, pgstore.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	s := backend.StreamID{AggregateType: "Probe", Key: "dropped"}
	if err := b.Append(ctx, testCommit(s, 0, 1, "before-drop")); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `DROP SCHEMA `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
		t.Fatal(err)
	}
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, pgstore.ErrSchemaMissing) || !strings.Contains(err.Error(), s.String()) {
			t.Errorf("%s after the schema was dropped: got %v, want ErrSchemaMissing naming %s", op, err, s)
		}
	}
	check("Append", b.Append(ctx, testCommit(s, 1, 1, "after-drop")))
	var loadErr error
	for _, err := range b.Load(ctx, s, 0) {
		loadErr = err
	}
	check("Load", loadErr)
	_, err = snaps.Get(ctx, s)
	check("SnapshotStore.Get", err)
	check("SnapshotStore.Put", snaps.Put(ctx, backend.Snapshot{Stream: s, Sequence: 1, State: []byte("{}")}))
	var feedErr error
	for _, err := range b.ReadFeed(ctx, "") {
		feedErr = err
	}
	if !errors.Is(feedErr, pgstore.ErrSchemaMissing) {
		t.Errorf("ReadFeed after the schema was dropped: got %v, want ErrSchemaMissing", feedErr)
	}
}

func TestInvalidSchemaNames(t *testing.T) {
	t.Parallel()
	pool := newPool(t, 1)
	for _, name := range []string{"", strings.Repeat("s", 64), "nul\x00byte"} {
		if _, err := pgstore.NewBackend(context.Background(), pool, pgstore.WithSchema(name)); err == nil {
			t.Errorf("schema name %q accepted", name)
		}
	}
}

// Unusual but valid schema names are quoted, not interpreted.
func TestQuotedSchemaName(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t, 4)
	schema := newSchema(t, pool) + `-Mixed "Case" 'q'; DROP TABLE x;--`
	t.Cleanup(func() {
		_, _ = pool.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`)
	})
	b := newBackend(t, pool, schema)
	s := backend.StreamID{AggregateType: "Probe", Key: "quoted"}
	if err := b.Append(ctx, testCommit(s, 0, 3, "quoted-1")); err != nil {
		t.Fatal(err)
	}
	if n := len(loadAll(t, b, s)); n != 3 {
		t.Fatalf("loaded %d events, want 3", n)
	}
	var got []backend.FeedCommit
	for c, err := range b.ReadFeed(ctx, "") {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, c)
	}
	if len(got) != 1 || got[0].ID != "quoted-1" {
		t.Fatalf("feed: %+v", got)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := b.WaitFeed(wctx, ""); err != nil { // a commit is readable: returns at once
		t.Fatal(err)
	}
}

// loadAll returns the stream's records, failing tb on an error.
func loadAll(tb testing.TB, b backend.Backend, s backend.StreamID) []backend.Record {
	tb.Helper()
	var out []backend.Record
	for r, err := range b.Load(context.Background(), s, 0) {
		if err != nil {
			tb.Fatalf("Load(%s): %v", s, err)
		}
		out = append(out, r)
	}
	return out
}
