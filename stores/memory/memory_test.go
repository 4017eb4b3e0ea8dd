package memory_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/storetest"

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

// BenchmarkNewStream loads and then appends one record to a new stream per
// op, as an aggregate's first command does, in backends of 2,048 streams.
func BenchmarkNewStream(b *testing.B) {
	const perBackend = 2048
	ctx := context.Background()
	commits := make([]backend.Commit, perBackend)
	now := time.Now().UTC()
	for i := range commits {
		s := backend.StreamID{AggregateType: "Account", Key: fmt.Sprintf("%08x-9d4a-4e6b-8a7c-5d1e2f3a4b5c", i)}
		id := es.NewCommitID()
		commits[i] = backend.Commit{Stream: s, ID: id, Records: []backend.Record{{Stream: s, Sequence: 1,
			EventType: "Deposited", Data: []byte(`{"Amount":1}`), Timestamp: now, CommitID: id}}}
	}
	var be *memory.Backend
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i%perBackend == 0 {
			be = memory.NewBackend()
		}
		c := commits[i%perBackend]
		for _, err := range be.Load(ctx, c.Stream, 0) {
			b.Fatal(err)
		}
		if err := be.Append(ctx, c); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
