package memory_test

import (
	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/storetest"
	"testing"

	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/backend/backendtest"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

func TestBackend(t *testing.T) {
	backendtest.RunBackend(t, func(*testing.T) backend.Backend { return memory.NewBackend() })
}

func TestFeed(t *testing.T) {
	backendtest.RunFeed(t, func(*testing.T) backend.Backend { return memory.NewBackend() })
}

func TestCheckpoints(t *testing.T) {
	backendtest.RunCheckpoints(t, func(*testing.T) backend.Checkpoints { return memory.NewBackend() })
}

func TestSnapshotStore(t *testing.T) {
	backendtest.RunSnapshotStore(t, func(*testing.T) backend.SnapshotStore { return memory.NewSnapshotStore() })
}

func TestEventStore(t *testing.T) {
	storetest.RunEventStore(t, func(*testing.T) es.EventStore { return es.NewStore(memory.NewBackend()) })
}

func TestStress(t *testing.T) {
	storetest.RunStress(t, es.NewStore(memory.NewBackend()), storetest.StressConfig{})
}
