package mongostore_test

import (
	"context"
	"testing"

	es "github.com/aggregatekit/eventsourcing"
	esmongo "github.com/aggregatekit/eventsourcing/stores/mongo"
	"github.com/aggregatekit/eventsourcing/storetest"
)

func TestBackendConformance(t *testing.T) {
	t.Parallel()
	client := connect(t)
	db := newDatabase(t, client)
	storetest.RunBackend(t, func(t *testing.T) es.Backend {
		b, err := esmongo.NewBackend(context.Background(), client, db, newCollection())
		if err != nil {
			t.Fatalf("NewBackend: %v", err)
		}
		return b
	})
}

// The same suite with the boundary cache off: every Append at expected > 0
// checks the head with a find, including those the cache would skip.
func TestBackendConformanceNoCache(t *testing.T) {
	t.Parallel()
	client := connect(t)
	db := newDatabase(t, client)
	storetest.RunBackend(t, func(t *testing.T) es.Backend {
		b, err := esmongo.NewBackend(context.Background(), client, db, newCollection(), esmongo.WithBoundaryCache(0))
		if err != nil {
			t.Fatalf("NewBackend: %v", err)
		}
		return b
	})
}

func TestEventStoreConformance(t *testing.T) {
	t.Parallel()
	client := connect(t)
	db := newDatabase(t, client)
	storetest.RunEventStore(t, func(t *testing.T) es.EventStore {
		s, err := esmongo.NewStore(context.Background(), client, db, newCollection())
		if err != nil {
			t.Fatalf("NewStore: %v", err)
		}
		return s
	})
}

func TestSnapshotStoreConformance(t *testing.T) {
	t.Parallel()
	client := connect(t)
	db := newDatabase(t, client)
	storetest.RunSnapshotStore(t, func(t *testing.T) es.SnapshotStore {
		s, err := esmongo.NewSnapshotStore(client, db, newCollection())
		if err != nil {
			t.Fatalf("NewSnapshotStore: %v", err)
		}
		return s
	})
}
