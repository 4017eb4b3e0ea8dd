package sqlitestore_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/backend/backendtest"
	"github.com/aggregatekit/eventsourcing/stores/sqlitestore"
	"github.com/aggregatekit/eventsourcing/storetest"
)

// open opens a Backend on the file at path and closes it when t ends.
func open(t testing.TB, path string, opts ...sqlitestore.Option) *sqlitestore.Backend {
	t.Helper()
	b, err := sqlitestore.Open(context.Background(), path, opts...)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// Every subtest opens its own Backend on one file shared by the run, and
// the second instance is another Backend (another connection pool, as
// another process would have) on the same file.
func TestBackend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	backendtest.RunBackend(t, func(t *testing.T) backend.Backend { return open(t, path) },
		backendtest.WithSecondInstance(func(t *testing.T, _ backend.Backend) backend.Backend { return open(t, path) }))
}

// The same suite through NewBackend, on *sql.DB handles the test owns,
// whose connections have no busy timeout: the Backend's own retry must keep
// two instances' writes from failing with "database is locked".
func TestBackendOnOwnDB(t *testing.T) {
	path := filepath.Join(t.TempDir(), "own.db")
	newDB := func(t *testing.T) *sql.DB {
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		return db
	}
	newBackend := func(t *testing.T) backend.Backend {
		db := newDB(t)
		b, err := sqlitestore.NewBackend(context.Background(), db)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	backendtest.RunBackend(t, newBackend,
		backendtest.WithLongStream(2000),
		backendtest.WithSecondInstance(func(t *testing.T, _ backend.Backend) backend.Backend { return newBackend(t) }))
}

func TestFeed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "feed.db")
	backendtest.RunFeed(t, func(t *testing.T) backend.Backend { return open(t, path) })
}

func TestCheckpoints(t *testing.T) {
	path := filepath.Join(t.TempDir(), "checkpoints.db")
	backendtest.RunCheckpoints(t, func(t *testing.T) backend.Checkpoints { return open(t, path) })
}

func TestSnapshotStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "snapshots.db")
	backendtest.RunSnapshotStore(t, func(t *testing.T) backend.SnapshotStore { return sqlitestore.NewSnapshotStore(open(t, path)) })
}

func TestEventStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	storetest.RunEventStore(t, func(t *testing.T) es.EventStore { return es.NewStore(open(t, path)) })
}

func TestStress(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stress.db")
	res := storetest.RunStress(t, es.NewStore(open(t, path)), storetest.StressConfig{})
	if res.Commands == 0 {
		t.Fatal("no command was acknowledged")
	}
}
