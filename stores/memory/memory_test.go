package memory_test

import (
	"testing"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/stores/memory"
	"github.com/aggregatekit/eventsourcing/storetest"
)

func TestBackendConformance(t *testing.T) {
	storetest.RunBackend(t, func(*testing.T) es.Backend { return memory.NewBackend() })
}

func TestEventStoreConformance(t *testing.T) {
	storetest.RunEventStore(t, func(*testing.T) es.EventStore { return memory.NewStore() })
}

func TestSnapshotStoreConformance(t *testing.T) {
	storetest.RunSnapshotStore(t, func(*testing.T) es.SnapshotStore { return memory.NewSnapshotStore() })
}

func TestStress(t *testing.T) {
	storetest.RunStress(t, memory.NewStore(), storetest.StressConfig{})
}
