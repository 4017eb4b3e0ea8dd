package pgstore_test

import (
	"context"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/backend/backendtest"
	"github.com/aggregatekit/eventsourcing/stores/pgstore"
	"github.com/aggregatekit/eventsourcing/storetest"
)

func TestBackendConformance(t *testing.T) {
	t.Parallel()
	pool := newPool(t, 24)
	schema := newSchema(t, pool)
	backendtest.RunBackend(t, func(t *testing.T) backend.Backend {
		return newBackend(t, pool, schema)
	}, backendtest.WithSecondInstance(func(t *testing.T, first backend.Backend) backend.Backend {
		// Another process: its own pool, from the URL.
		b, err := pgstore.Open(context.Background(), postgresURL(t), pgstore.WithSchema(first.(*pgstore.Backend).Schema()))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return b
	}))
}

// The same suite with a page of 7 rows, so that loads cross many pages.
func TestBackendConformanceSmallPages(t *testing.T) {
	t.Parallel()
	pool := newPool(t, 24)
	schema := newSchema(t, pool)
	backendtest.RunBackend(t, func(t *testing.T) backend.Backend {
		return newBackend(t, pool, schema, pgstore.WithPageSize(7), pgstore.WithoutNotify())
	}, backendtest.WithLongStream(2000))
}

func TestFeedConformance(t *testing.T) {
	t.Parallel()
	pool := newPool(t, 24)
	schema := newSchema(t, pool)
	backendtest.RunFeed(t, func(t *testing.T) backend.Backend {
		return newBackend(t, pool, schema)
	})
}

// The feed suite with pages of 2 rows (commits cut by pages) and without
// notifications (WaitFeed polls every 20ms).
func TestFeedConformanceSmallPagesPolling(t *testing.T) {
	t.Parallel()
	pool := newPool(t, 24)
	schema := newSchema(t, pool)
	backendtest.RunFeed(t, func(t *testing.T) backend.Backend {
		return newBackend(t, pool, schema, pgstore.WithPageSize(2), pgstore.WithoutNotify(), pgstore.WithPollInterval(20*time.Millisecond))
	})
}

func TestCheckpointsConformance(t *testing.T) {
	t.Parallel()
	pool := newPool(t, 8)
	schema := newSchema(t, pool)
	backendtest.RunCheckpoints(t, func(t *testing.T) backend.Checkpoints {
		return newBackend(t, pool, schema)
	})
}

func TestSnapshotStoreConformance(t *testing.T) {
	t.Parallel()
	pool := newPool(t, 20)
	schema := newSchema(t, pool)
	backendtest.RunSnapshotStore(t, func(t *testing.T) backend.SnapshotStore {
		s, err := pgstore.NewSnapshotStore(context.Background(), pool, pgstore.WithSchema(schema))
		if err != nil {
			t.Fatalf("NewSnapshotStore: %v", err)
		}
		return s
	})
}

func TestEventStoreConformance(t *testing.T) {
	t.Parallel()
	pool := newPool(t, 24)
	schema := newSchema(t, pool)
	storetest.RunEventStore(t, func(t *testing.T) es.EventStore {
		return es.NewStore(newBackend(t, pool, schema))
	})
}

func TestStress(t *testing.T) {
	t.Parallel()
	pool := newPool(t, 32)
	schema := newSchema(t, pool)
	store := es.NewStore(newBackend(t, pool, schema))
	storetest.RunStress(t, store, storetest.StressConfig{HotWriters: 16, ColdWriters: 8})
}
