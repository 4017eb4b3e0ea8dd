package main

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	mongodriver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/aggregatekit/eventsourcing/internal/testenv"
)

// The same flow runs against each store the server can use, through
// openStore, so the wiring in store.go is what is tested. The MongoDB and
// DynamoDB tests need the servers `make test` starts; each uses a database
// or table of its own, dropped at the end.

func TestStoreFlowMemory(t *testing.T) {
	t.Parallel()
	cfg := defaultConfig(t)
	storeFlow(t, cfg)
}

func TestStoreFlowMongo(t *testing.T) {
	t.Parallel()
	cfg := defaultConfig(t)
	cfg.Store = "mongo"
	cfg.MongoURI = testenv.Get(t, testenv.MongoURI)
	cfg.MongoDatabase = uniqueName()
	t.Cleanup(func() {
		ctx := context.Background()
		client, err := mongodriver.Connect(options.Client().ApplyURI(cfg.MongoURI))
		if err != nil {
			t.Errorf("dropping the test database: %v", err)
			return
		}
		defer client.Disconnect(ctx)
		if err := client.Database(cfg.MongoDatabase).Drop(ctx); err != nil {
			t.Errorf("dropping the test database: %v", err)
		}
	})
	storeFlow(t, cfg)
}

func TestStoreFlowDynamoDB(t *testing.T) {
	t.Parallel()
	cfg := defaultConfig(t)
	cfg.Store = "dynamodb"
	cfg.DynamoEndpoint = testenv.Get(t, testenv.DynamoDBEndpoint)
	cfg.DynamoTable = uniqueName() // openStore creates it
	t.Cleanup(func() {
		ctx := context.Background()
		client, err := dynamoClient(ctx, cfg)
		if err == nil {
			_, err = client.DeleteTable(ctx, &ddb.DeleteTableInput{TableName: aws.String(cfg.DynamoTable)})
		}
		if err != nil {
			t.Errorf("deleting the test table: %v", err)
		}
	})
	storeFlow(t, cfg)
}

func uniqueName() string {
	return "counter_test_" + strings.ToLower(rand.Text()[:12])
}

// storeFlow runs the server over the store stack of cfg (with snapshots
// every 10 events): not found, increments, the maximum, concurrent writers,
// and, for a persistent store, a restart that must find the same state.
func storeFlow(t *testing.T, cfg config) {
	cfg.MaxCount = 1000
	cfg.SnapshotEvery = 10
	c := startServer(t, openTestStore(t, cfg), cfg.MaxCount, exampleRetryPolicy())

	c.expect(404, "GET", "/counters/a", "")
	if out := c.expect(200, "POST", "/counters/a/increment", `{"by": 5}`); out.CounterView != (CounterView{"a", 5, 1}) {
		t.Errorf("first increment = %+v", out)
	}
	c.expect(422, "POST", "/counters/a/increment", `{"by": 996}`)
	if out := c.expect(200, "GET", "/counters/a", ""); out.CounterView != (CounterView{"a", 5, 1}) {
		t.Errorf("after a refused increment: %+v", out)
	}
	hammer(t, c, "hot", 4, 25)
	before := c.expect(200, "GET", "/counters/hot", "")

	if cfg.Store == "memory" {
		return
	}
	restarted := startServer(t, openTestStore(t, cfg), cfg.MaxCount, exampleRetryPolicy())
	if after := restarted.expect(200, "GET", "/counters/hot", ""); after != before {
		t.Errorf("after a restart: %+v, before: %+v", after, before)
	}
}
