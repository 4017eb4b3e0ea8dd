package redisstore_test

import (
	"context"
	"log"
	"log/slog"
	"os"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/middleware/snapshot"
	"github.com/aggregatekit/eventsourcing/stores/memory"
	"github.com/aggregatekit/eventsourcing/stores/redisstore"
	goredis "github.com/redis/go-redis/v9"
)

// Snapshots in Redis for an event store elsewhere (here in memory), every
// 100 events, kept for a week after their last write. It needs a Redis
// server, so it is compiled but not run by go test.
func ExampleNewSnapshotStore() {
	client := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:6379"})
	defer client.Close()

	snapshots, err := redisstore.NewSnapshotStore(client,
		redisstore.WithKeyPrefix("myapp:snapshot:"),
		redisstore.WithTTL(7*24*time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	mw, err := snapshot.New(snapshots, snapshot.EveryN(100),
		snapshot.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))))
	if err != nil {
		log.Fatal(err)
	}
	store := es.Wrap(es.NewStore(memory.NewBackend()), mw)
	defer store.Close()

	// Aggregates initialized with store now load from their latest snapshot.
	_, err = snapshots.Get(context.Background(), es.StreamID{AggregateType: "Counter", Key: "visits"})
	log.Println(err)
}
