package projection_test

import (
	"testing"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/projection"
	"github.com/aggregatekit/eventsourcing/projection/projectiontest"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

// Kill and restart a projector mid-stream while 16 writers commit, on the
// memory store's feed with a MemoryStore beside an in-memory read model.
func TestKillRestartMemoryFeed(t *testing.T) {
	b := memory.NewBackend()
	res := projectiontest.RunKillRestart(t, projectiontest.KillConfig{
		Store:    es.NewStore(b),
		Source:   projection.FromFeed(b),
		Progress: projection.NewMemoryStore(),
		Options:  []projection.RunnerOption{projection.WithBatchSize(16)},
	})
	if res.InApply == 0 || res.Events == 0 {
		t.Fatalf("%+v: no runner was killed inside Apply", res)
	}
}
