package mongostore_test

import (
	"context"
	"sync"
	"testing"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/backend/backendtest"
	"github.com/aggregatekit/eventsourcing/stores/mongostore"
	"github.com/aggregatekit/eventsourcing/storetest"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// conformanceBackend returns a factory of Backends, each on a collection of
// its own in db, and the matching WithSecondInstance option: a second
// Backend on the first one's collection, as another process would open it.
func conformanceBackend(client *mongo.Client, db string, opts ...mongostore.Option) (func(t *testing.T) backend.Backend, backendtest.Option) {
	var mu sync.Mutex
	colls := map[backend.Backend]string{}
	open := func(t *testing.T, coll string) *mongostore.Backend {
		t.Helper()
		b, err := mongostore.NewBackend(context.Background(), client, db, coll, opts...)
		if err != nil {
			t.Fatalf("NewBackend: %v", err)
		}
		return b
	}
	first := func(t *testing.T) backend.Backend {
		coll := newCollection()
		b := open(t, coll)
		mu.Lock()
		colls[b] = coll
		mu.Unlock()
		return b
	}
	second := backendtest.WithSecondInstance(func(t *testing.T, b backend.Backend) backend.Backend {
		mu.Lock()
		coll, ok := colls[b]
		mu.Unlock()
		if !ok {
			t.Fatalf("second instance of a Backend the factory did not make")
		}
		return open(t, coll)
	})
	return first, second
}

func TestBackendConformance(t *testing.T) {
	t.Parallel()
	client := connect(t)
	open, second := conformanceBackend(client, newDatabase(t, client))
	backendtest.RunBackend(t, open, second)
}

// The same suite with the boundary cache off: every Append at expected > 0
// checks the head with a find, including those the cache would skip.
func TestBackendConformanceNoCache(t *testing.T) {
	t.Parallel()
	client := connect(t)
	open, second := conformanceBackend(client, newDatabase(t, client), mongostore.WithBoundaryCache(0))
	backendtest.RunBackend(t, open, second)
}

// Without the pending marker the Backend is the same store, minus the
// outbox.
func TestBackendConformanceWithoutOutbox(t *testing.T) {
	t.Parallel()
	client := connect(t)
	open, second := conformanceBackend(client, newDatabase(t, client), mongostore.WithoutOutbox())
	backendtest.RunBackend(t, open, second)
}

func TestOutboxConformance(t *testing.T) {
	t.Parallel()
	client := connect(t)
	open, _ := conformanceBackend(client, newDatabase(t, client))
	backendtest.RunOutbox(t, open)
}

func TestOutboxConformanceNoCache(t *testing.T) {
	t.Parallel()
	client := connect(t)
	open, _ := conformanceBackend(client, newDatabase(t, client), mongostore.WithBoundaryCache(0))
	backendtest.RunOutbox(t, open)
}

func TestEventStoreConformance(t *testing.T) {
	t.Parallel()
	client := connect(t)
	db := newDatabase(t, client)
	storetest.RunEventStore(t, func(t *testing.T) es.EventStore {
		b, err := mongostore.NewBackend(context.Background(), client, db, newCollection())
		if err != nil {
			t.Fatalf("NewBackend: %v", err)
		}
		return es.NewStore(b)
	})
}

func TestSnapshotStoreConformance(t *testing.T) {
	t.Parallel()
	client := connect(t)
	db := newDatabase(t, client)
	backendtest.RunSnapshotStore(t, func(t *testing.T) backend.SnapshotStore {
		s, err := mongostore.NewSnapshotStore(client, db, newCollection())
		if err != nil {
			t.Fatalf("NewSnapshotStore: %v", err)
		}
		return s
	})
}

// Snapshots may share the events collection (and its unique index).
func TestSnapshotStoreConformanceInEventsCollection(t *testing.T) {
	t.Parallel()
	client := connect(t)
	db := newDatabase(t, client)
	backendtest.RunSnapshotStore(t, func(t *testing.T) backend.SnapshotStore {
		coll := newCollection()
		b, err := mongostore.NewBackend(context.Background(), client, db, coll)
		if err != nil {
			t.Fatalf("NewBackend: %v", err)
		}
		t.Cleanup(func() { _ = b.Close() })
		s, err := mongostore.NewSnapshotStore(client, db, coll)
		if err != nil {
			t.Fatalf("NewSnapshotStore: %v", err)
		}
		return s
	})
}
