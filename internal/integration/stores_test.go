package integration_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	mongodriver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/internal/testkit"
	"github.com/aggregatekit/eventsourcing/stores/dynamostore"
	"github.com/aggregatekit/eventsourcing/stores/mongostore"
)

var seq atomic.Int64

func unique(prefix string) string {
	return fmt.Sprintf("%s%d_%d", prefix, time.Now().UnixNano()%1e9, seq.Add(1))
}

// commandTimeout bounds each command of the database tests.
const commandTimeout = 5 * time.Second

// mongoStore returns an event store on a fresh database of the test server,
// closed when t ends.
func mongoStore(t testing.TB) es.EventStore {
	t.Helper()
	uri := testkit.Get(t, testkit.MongoURI)
	client, err := mongodriver.Connect(options.Client().ApplyURI(uri).
		SetServerSelectionTimeout(commandTimeout).SetConnectTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	b, err := mongostore.NewBackend(context.Background(), client, unique("it"), "events")
	if err != nil {
		t.Fatalf("mongostore: %v", err)
	}
	s := es.NewStore(b)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// dynamoStore returns an event store on a fresh table of the test server,
// closed and dropped when t ends.
func dynamoStore(t testing.TB) es.EventStore {
	t.Helper()
	ctx := context.Background()
	client := dynamostore.LocalClient(testkit.Get(t, testkit.DynamoDBEndpoint), "us-east-1")
	table := unique("it")
	if err := dynamostore.CreateTable(ctx, client, table); err != nil {
		t.Fatalf("create table: %v", err)
	}
	t.Cleanup(func() {
		_, _ = client.DeleteTable(context.Background(), &ddb.DeleteTableInput{TableName: aws.String(table)})
	})
	b, err := dynamostore.NewBackend(ctx, client, table)
	if err != nil {
		t.Fatalf("dynamostore: %v", err)
	}
	s := es.NewStore(b)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// databases are the event stores on real servers that every integration test
// runs against.
var databases = []struct {
	name   string
	server testkit.Server
	open   func(testing.TB) es.EventStore
}{
	{"MongoDB", "mongo", mongoStore},
	{"DynamoDB", "dynamodb", dynamoStore},
}
