package mongostore_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aggregatekit/eventsourcing/internal/testenv"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

var dbCounter atomic.Int64

// connect returns a client of the test server, disconnected when tb ends,
// with extra client options applied (for a command monitor, say).
func connect(tb testing.TB, opts ...*options.ClientOptions) *mongo.Client {
	tb.Helper()
	uri := testenv.Get(tb, testenv.MongoURI)
	co := append([]*options.ClientOptions{options.Client().ApplyURI(uri)}, opts...)
	client, err := mongo.Connect(co...)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	tb.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	return client
}

// newDatabase returns the name of a database no other test uses, dropped
// when tb ends.
func newDatabase(tb testing.TB, client *mongo.Client) string {
	tb.Helper()
	name := fmt.Sprintf("estest_%s_%d", time.Now().Format("150405"), dbCounter.Add(1))
	name += "_" + fmt.Sprint(time.Now().UnixNano()%1e6)
	tb.Cleanup(func() { _ = client.Database(name).Drop(context.Background()) })
	return name
}

// commandCounter counts the commands a client sends, by name, for one
// database.
type commandCounter struct {
	mu     sync.Mutex
	db     string
	counts map[string]int
}

func (c *commandCounter) monitor() *event.CommandMonitor {
	return &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if e.DatabaseName == c.db {
			c.counts[e.CommandName]++
		}
	}}
}

// take returns the counts since the last call and resets them.
func (c *commandCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.counts
	c.counts = map[string]int{}
	return out
}

func mongoURI(tb testing.TB) string { return testenv.Get(tb, testenv.MongoURI) }

// newCollection returns a collection name no other test uses. FerretDB scans
// a whole collection for every query that is not on _id alone, so tests that
// share a collection slow each other down.
func newCollection() string { return fmt.Sprintf("c%d", dbCounter.Add(1)) }
