package integration_test

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/internal/testkit"
	"github.com/aggregatekit/eventsourcing/middleware/logging"
	"github.com/aggregatekit/eventsourcing/middleware/publish"
	"github.com/aggregatekit/eventsourcing/middleware/snapshot"
	"github.com/aggregatekit/eventsourcing/stores/redisstore"
	"github.com/aggregatekit/eventsourcing/storetest"
)

// fullStack wraps store in logging(snapshot(publish(store))) with Redis
// snapshots, and counts what it publishes.
func fullStack(t *testing.T, store es.EventStore) (es.EventStore, *atomic.Int64) {
	t.Helper()
	rc := goredis.NewClient(&goredis.Options{Addr: testkit.Get(t, testkit.RedisAddr)})
	t.Cleanup(func() { _ = rc.Close() })
	snaps, err := redisstore.NewSnapshotStore(rc, redisstore.WithKeyPrefix(unique("stress:")+":"))
	if err != nil {
		t.Fatal(err)
	}
	logMW, err := logging.NewSlog(slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	snapMW, err := snapshot.New(snaps, snapshot.EveryN(10), snapshot.WithErrorHandler(func(_ context.Context, err error) {
		t.Errorf("snapshot: %v", err)
	}))
	if err != nil {
		t.Fatal(err)
	}
	var published atomic.Int64
	bus := publish.NewBus()
	bus.SubscribeAll(func(context.Context, publish.Message) error { published.Add(1); return nil })
	pubMW, err := publish.New(bus, publish.WithErrorHandler(func(_ context.Context, err *publish.Error) {
		t.Errorf("publish: %v", err)
	}))
	if err != nil {
		t.Fatal(err)
	}
	return es.Wrap(store, logMW, snapMW, pubMW), &published
}

// dbConfig sizes the database runs: the hot aggregate's conflicts make each
// command cost several round trips, so they run a third of the memory size.
func dbConfig() storetest.StressConfig {
	return storetest.StressConfig{Commands: max(testkit.StressCommands(25)/3, 4)}
}

// TestStress runs storetest.RunStress on each database store, alone and
// under logging(snapshot(publish(store))); with the stack, everything stored
// must also have been published.
func TestStress(t *testing.T) {
	for _, db := range databases {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			storetest.RunStress(t, db.open(t), dbConfig())
		})
		t.Run(db.name+"FullStack", func(t *testing.T) {
			t.Parallel()
			store, published := fullStack(t, db.open(t))
			res := storetest.RunStress(t, store, dbConfig())
			if published.Load() != res.Events {
				t.Fatalf("published %d events, stored %d", published.Load(), res.Events)
			}
		})
	}
}
