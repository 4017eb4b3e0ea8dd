package dynamostore

import (
	"context"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/backend/backendtest"
	"github.com/aggregatekit/eventsourcing/storetest"
)

// openSecond opens another Backend over first's table, as another process
// would: it has seen none of first's commits.
func openSecond(opts ...Option) func(t *testing.T, first backend.Backend) backend.Backend {
	return func(t *testing.T, first backend.Backend) backend.Backend {
		b := first.(*Backend)
		other, err := NewBackend(context.Background(), b.client, *b.table, opts...)
		if err != nil {
			t.Fatalf("second NewBackend: %v", err)
		}
		return other
	}
}

// outboxLag is how long RunOutbox polls before it concludes that a commit is
// not pending. The outbox index of real DynamoDB lags behind writes (usually
// by well under a second); dynalite's does not lag at all.
const outboxLag = 2 * time.Second

func TestBackendConformance(t *testing.T) {
	client := newClient(t)
	backendtest.RunBackend(t, func(t *testing.T) backend.Backend { return newBackend(t, client) },
		backendtest.WithSecondInstance(openSecond()))
}

// The same suite with the boundary cache off and tiny pages: every append
// at expected > 0 reads the head first, loads after a position use the
// look-back Query when needed, and long streams take many pages.
func TestBackendConformanceNoCacheSmallPages(t *testing.T) {
	client := newClient(t)
	opts := []Option{WithBoundaryCache(0), WithQueryLimit(5)}
	backendtest.RunBackend(t, func(t *testing.T) backend.Backend { return newBackend(t, client, opts...) },
		backendtest.WithSecondInstance(openSecond(opts...)), backendtest.WithLongStream(2000))
}

func TestOutboxConformance(t *testing.T) {
	client := newClient(t)
	backendtest.RunOutbox(t, func(t *testing.T) backend.Backend { return newBackend(t, client) },
		backendtest.WithEventualConsistency(outboxLag))
}

// With the caches off, Pending checks every stream's previous commit against
// the table on every call.
func TestOutboxConformanceNoCache(t *testing.T) {
	client := newClient(t)
	backendtest.RunOutbox(t, func(t *testing.T) backend.Backend { return newBackend(t, client, WithBoundaryCache(0)) },
		backendtest.WithEventualConsistency(outboxLag))
}

func TestEventStoreConformance(t *testing.T) {
	client := newClient(t)
	storetest.RunEventStore(t, func(t *testing.T) es.EventStore { return es.NewStore(newBackend(t, client)) })
}

func TestStress(t *testing.T) {
	client := newClient(t)
	storetest.RunStress(t, es.NewStore(newBackend(t, client)), storetest.StressConfig{Commands: 10})
}

func TestSnapshotStoreConformance(t *testing.T) {
	client := newClient(t)
	table := newTable(t, client) // shared: each subtest uses streams of its own
	backendtest.RunSnapshotStore(t, func(t *testing.T) backend.SnapshotStore {
		s, err := NewSnapshotStore(context.Background(), client, table)
		if err != nil {
			t.Fatalf("NewSnapshotStore: %v", err)
		}
		return s
	})
}
