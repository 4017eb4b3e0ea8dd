package dynamodb

import (
	"context"
	"testing"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/storetest"
)

func TestBackendConformance(t *testing.T) {
	client := newClient(t)
	storetest.RunBackend(t, func(t *testing.T) es.Backend { return newBackend(t, client) })
}

// The same suite with the boundary cache off and tiny pages: every append
// at expected > 0 reads the head first, loads after a position use the
// look-back Query when needed, and long streams take many pages.
func TestBackendConformanceNoCacheSmallPages(t *testing.T) {
	client := newClient(t)
	storetest.RunBackend(t, func(t *testing.T) es.Backend {
		return newBackend(t, client, WithBoundaryCache(0), WithQueryLimit(3))
	})
}

func TestEventStoreConformance(t *testing.T) {
	client := newClient(t)
	storetest.RunEventStore(t, func(t *testing.T) es.EventStore {
		s, err := NewStore(context.Background(), client, newTable(t, client))
		if err != nil {
			t.Fatalf("NewStore: %v", err)
		}
		return s
	})
}

func TestSnapshotStoreConformance(t *testing.T) {
	client := newClient(t)
	storetest.RunSnapshotStore(t, func(t *testing.T) es.SnapshotStore {
		s, err := NewSnapshotStore(context.Background(), client, newTable(t, client))
		if err != nil {
			t.Fatalf("NewSnapshotStore: %v", err)
		}
		return s
	})
}
