package eventsourcing_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/aggregatetest"
	"github.com/aggregatekit/eventsourcing/middleware/snapshot"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

// Events stored by version 1 of an aggregate load into version 2 on the
// memory store, bare and under the snapshot middleware (snapshots of the
// old state version are ignored). The database store modules run the same
// suite (aggregatetest.RunUpcasting) over their own stores.
func TestUpcastingOnStores(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		aggregatetest.RunUpcasting(t, func(*testing.T) es.EventStore { return es.NewStore(memory.NewBackend()) })
	})
	t.Run("memory+snapshots", func(t *testing.T) {
		snaps := memory.NewSnapshotStore()
		var mu sync.Mutex
		var mismatches int
		mw, err := snapshot.New(snaps, snapshot.EveryN(1), snapshot.WithErrorHandler(func(_ context.Context, err error) {
			if !errors.Is(err, snapshot.ErrVersionMismatch) {
				t.Errorf("snapshot problem: %v", err)
			}
			mu.Lock()
			mismatches++
			mu.Unlock()
		}))
		if err != nil {
			t.Fatal(err)
		}
		aggregatetest.RunUpcasting(t, func(*testing.T) es.EventStore { return es.Wrap(es.NewStore(memory.NewBackend()), mw) })
		if mismatches == 0 {
			t.Fatal("no snapshot of version 1 was met by version 2: the suite did not exercise snapshots")
		}
	})
}
