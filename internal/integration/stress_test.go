package stress_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	goredis "github.com/redis/go-redis/v9"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/internal/testenv"
	"github.com/aggregatekit/eventsourcing/middleware/logging"
	"github.com/aggregatekit/eventsourcing/middleware/publish"
	"github.com/aggregatekit/eventsourcing/middleware/snapshot"
	"github.com/aggregatekit/eventsourcing/stores/dynamodb"
	"github.com/aggregatekit/eventsourcing/stores/mongo"
	"github.com/aggregatekit/eventsourcing/stores/redis"
	"github.com/aggregatekit/eventsourcing/storetest"
)

var seq atomic.Int64

func unique(prefix string) string {
	return fmt.Sprintf("%s%d_%d", prefix, time.Now().UnixNano()%1e9, seq.Add(1))
}

// MongoStore returns an event store on a fresh database of the test server.
func mongoStore(t *testing.T) es.EventStore {
	t.Helper()
	ctx := context.Background()
	b, err := mongo.Open(ctx, testenv.Get(t, testenv.MongoURI), unique("stress"), "events")
	if err != nil {
		t.Fatalf("mongo: %v", err)
	}
	return es.NewStore(b)
}

func dynamoStore(t *testing.T) es.EventStore {
	t.Helper()
	ctx := context.Background()
	client := ddb.New(ddb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(testenv.Get(t, testenv.DynamoDBEndpoint)),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	table := unique("stress")
	if err := dynamodb.CreateTable(ctx, client, table); err != nil {
		t.Fatalf("create table: %v", err)
	}
	t.Cleanup(func() {
		_, _ = client.DeleteTable(context.Background(), &ddb.DeleteTableInput{TableName: aws.String(table)})
	})
	s, err := dynamodb.NewStore(ctx, client, table)
	if err != nil {
		t.Fatalf("dynamodb: %v", err)
	}
	return s
}

// fullStack wraps store in logging(snapshot(publish(store))) with Redis
// snapshots, and checks at the end that publication matched storage.
func fullStack(t *testing.T, store es.EventStore) (es.EventStore, *atomic.Int64) {
	t.Helper()
	rc := goredis.NewClient(&goredis.Options{Addr: testenv.Get(t, testenv.RedisAddr)})
	t.Cleanup(func() { _ = rc.Close() })
	snaps, err := redis.NewSnapshotStore(rc, redis.WithKeyPrefix(unique("stress:")+":"))
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
	return storetest.StressConfig{Commands: max(storetest.StressCommands()/3, 4)}
}

// TestStress runs storetest.RunStress on each database store, alone and
// under logging(snapshot(publish(store))); with the stack, everything stored
// must also have been published.
func TestStress(t *testing.T) {
	for name, open := range map[string]func(*testing.T) es.EventStore{"Mongo": mongoStore, "DynamoDB": dynamoStore} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			store := open(t)
			defer store.Close()
			storetest.RunStress(t, store, dbConfig())
		})
		t.Run(name+"FullStack", func(t *testing.T) {
			t.Parallel()
			store, published := fullStack(t, open(t))
			defer store.Close()
			res := storetest.RunStress(t, store, dbConfig())
			if published.Load() != res.Events {
				t.Fatalf("published %d events, stored %d", published.Load(), res.Events)
			}
		})
	}
}
