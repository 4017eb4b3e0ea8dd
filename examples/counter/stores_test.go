package main

import (
	"context"
	"crypto/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/jackc/pgx/v5"
	mongodriver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/aggregatekit/eventsourcing/internal/testkit"
)

// The same flow runs against each store the server can use, through
// openStore, so the wiring in store.go is what is tested. The MongoDB and
// DynamoDB tests need the servers `make test` starts; each uses a database
// or table of its own, dropped at the end.

func TestStoreFlowSQLite(t *testing.T) {
	t.Parallel()
	storeFlow(t, defaultConfig(t)) // the default store
}

func TestStoreFlowMemory(t *testing.T) {
	t.Parallel()
	cfg := defaultConfig(t)
	cfg.Store = "memory"
	storeFlow(t, cfg)
}

func TestStoreFlowPostgres(t *testing.T) {
	t.Parallel()
	cfg := defaultConfig(t)
	cfg.Store = "postgres"
	url := testkit.Get(t, testkit.PostgresURL)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	db := uniqueName()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := conn.Exec(context.Background(), "DROP DATABASE "+db+" WITH (FORCE)"); err != nil {
			t.Errorf("dropping the test database: %v", err)
		}
		conn.Close(context.Background())
	})
	cfg.PostgresURL = strings.Replace(url, "/postgres?", "/"+db+"?", 1)
	storeFlow(t, cfg)
}

func TestStoreFlowMongo(t *testing.T) {
	t.Parallel()
	cfg := defaultConfig(t)
	cfg.Store = "mongo"
	cfg.MongoURI = testkit.Get(t, testkit.MongoURI)
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
	cfg.DynamoEndpoint = testkit.Get(t, testkit.DynamoDBEndpoint)
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
	c := startServerWithList(t, cfg)

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
	want := []CounterView{{"a", 5, 1}, before.CounterView}
	checkList(t, c, cfg.Store, want)

	if cfg.Store == "memory" {
		return
	}
	restarted := startServerWithList(t, cfg)
	if after := restarted.expect(200, "GET", "/counters/hot", ""); after != before {
		t.Errorf("after a restart: %+v, before: %+v", after, before)
	}
	checkList(t, restarted, cfg.Store, want)
}

// checkList waits until GET /counters, paged one by one, lists want (the
// list follows the store a moment behind), or checks that a store without
// a feed answers 501.
func checkList(t *testing.T, c *client, store string, want []CounterView) {
	t.Helper()
	if store == "mongo" || store == "dynamodb" {
		if status, out := c.do("GET", "/counters", ""); status != 501 || !strings.Contains(out.Error, "feed") {
			t.Fatalf("GET /counters on %s: %d %q, want 501 explaining why", store, status, out.Error)
		}
		return
	}
	var got []CounterView
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		got = nil
		after := ""
		for {
			var page listPage
			c.getJSON("/counters?limit=1&after="+after, &page)
			got = append(got, page.Counters...)
			if page.Next == "" {
				break
			}
			after = page.Next
		}
		if slices.Equal(got, want) {
			return
		}
	}
	t.Fatalf("GET /counters lists %+v, want %+v", got, want)
}
