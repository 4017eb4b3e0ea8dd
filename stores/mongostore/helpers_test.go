package mongostore_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/internal/testkit"
	"github.com/aggregatekit/eventsourcing/stores/mongostore"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

var dbCounter atomic.Int64

// connect returns a client of the test server, disconnected when tb ends,
// with extra client options applied (for a command monitor, say).
func connect(tb testing.TB, opts ...*options.ClientOptions) *mongo.Client {
	tb.Helper()
	co := append([]*options.ClientOptions{options.Client().ApplyURI(mongoURI(tb))}, opts...)
	client, err := mongo.Connect(co...)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	tb.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	return client
}

func mongoURI(tb testing.TB) string { return testkit.Get(tb, testkit.MongoURI) }

// newDatabase returns the name of a database no other test uses, dropped
// when tb ends.
func newDatabase(tb testing.TB, client *mongo.Client) string {
	tb.Helper()
	name := fmt.Sprintf("estest_%s_%d", time.Now().Format("150405"), dbCounter.Add(1))
	name += "_" + fmt.Sprint(time.Now().UnixNano()%1e6)
	tb.Cleanup(func() { _ = client.Database(name).Drop(context.Background()) })
	return name
}

// newCollection returns a collection name no other test uses. FerretDB scans
// a whole collection for every query that is not on _id alone, so tests that
// share a collection slow each other down.
func newCollection() string { return fmt.Sprintf("c%d", dbCounter.Add(1)) }

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

// fixture is a Backend on a collection of its own, plus a raw handle on
// that collection.
type fixture struct {
	client *mongo.Client
	db     string
	name   string
	coll   *mongo.Collection
	b      *mongostore.Backend
}

func newFixture(t *testing.T, opts ...mongostore.Option) *fixture {
	t.Helper()
	client := connect(t)
	f := &fixture{client: client, db: newDatabase(t, client), name: newCollection()}
	f.coll = client.Database(f.db).Collection(f.name)
	f.b = f.open(t, opts...)
	return f
}

// open returns another Backend on the fixture's collection, closed when t
// ends.
func (f *fixture) open(t *testing.T, opts ...mongostore.Option) *mongostore.Backend {
	t.Helper()
	b, err := mongostore.NewBackend(context.Background(), f.client, f.db, f.name, opts...)
	if err != nil {
		t.Fatalf("NewBackend: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func stream(key string) backend.StreamID { return backend.StreamID{AggregateType: "Probe", Key: key} }

var commitSeq atomic.Int64

// commitOf returns a commit of n events of s after expected, with a commit
// ID of its own and payloads naming their sequence.
func commitOf(s backend.StreamID, expected int64, n int) backend.Commit {
	id := "c-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.FormatInt(commitSeq.Add(1), 10)
	c := backend.Commit{Stream: s, Expected: expected, ID: id, Records: make([]backend.Record, n)}
	for i := range c.Records {
		seq := expected + int64(i) + 1
		c.Records[i] = backend.Record{Stream: s, Sequence: seq, EventType: "Added",
			Data: []byte(fmt.Sprintf(`{"id":"e%d"}`, seq)), Timestamp: time.Now().UTC(), CommitID: id}
	}
	return c
}

func load(ctx context.Context, b backend.Backend, s backend.StreamID, after int64) ([]backend.Record, error) {
	var out []backend.Record
	for r, err := range b.Load(ctx, s, after) {
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

// indexTriple returns the key the unique index on (aggregate, key, first)
// gives doc, as real MongoDB builds it: a missing field counts as null, and
// numbers of different BSON types compare by value.
func indexTriple(doc bson.Raw) string {
	var parts [3]string
	for i, field := range []string{"aggregate", "key", "first"} {
		v, err := doc.LookupErr(field)
		switch {
		case err != nil || v.Type == bson.TypeNull || v.Type == bson.TypeUndefined:
			parts[i] = "null"
		case v.IsNumber():
			f, _ := v.AsFloat64OK()
			if n, ok := v.AsInt64OK(); ok {
				parts[i] = "number:" + strconv.FormatInt(n, 10)
			} else {
				parts[i] = "number:" + strconv.FormatFloat(f, 'g', -1, 64)
			}
		case v.Type == bson.TypeString:
			parts[i] = "string:" + strconv.Quote(v.StringValue())
		default:
			parts[i] = v.Type.String() + ":" + strconv.Quote(string(v.Value))
		}
	}
	return strings.Join(parts[:], " | ")
}

// checkUniqueTriples reports every pair of documents of coll that share
// the key of the unique index on (aggregate, key, first): documents that a
// real MongoDB server would have refused, whether or not the test server
// enforced the index (FerretDB does not treat a missing field as null).
func checkUniqueTriples(ctx context.Context, coll *mongo.Collection) error {
	cur, err := coll.Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "aggregate", Value: 1}, {Key: "key", Value: 1}, {Key: "first", Value: 1}}))
	if err != nil {
		return err
	}
	defer cur.Close(context.WithoutCancel(ctx))
	seen := map[string]string{}
	var dups []string
	for cur.Next(ctx) {
		k := indexTriple(cur.Current)
		id := cur.Current.Lookup("_id").String()
		if other, ok := seen[k]; ok {
			dups = append(dups, fmt.Sprintf("%s and %s share (aggregate, key, first) = (%s)", other, id, k))
		}
		seen[k] = id
	}
	if err := cur.Err(); err != nil {
		return err
	}
	if len(dups) > 0 {
		return fmt.Errorf("%d violations of the unique index: %s", len(dups), strings.Join(dups, "; "))
	}
	return nil
}

// uniqueIndexWatch checks, after every write command a client sends to db
// (see watch), that no two documents of the collection share the key of
// the unique index on (aggregate, key, first), through a client of its
// own. It records what it finds; violations returns it.
type uniqueIndexWatch struct {
	checker *mongo.Collection
	coll    string

	mu     sync.Mutex
	checks int
	found  []string
}

// watchUniqueIndex returns a client whose write commands to coll of db are
// each followed by a check of the unique index key (see uniqueIndexWatch).
func watchUniqueIndex(t *testing.T, db, coll string) (*mongo.Client, *uniqueIndexWatch) {
	t.Helper()
	w := &uniqueIndexWatch{checker: connect(t).Database(db).Collection(coll), coll: coll}
	mon := &event.CommandMonitor{Succeeded: func(ctx context.Context, e *event.CommandSucceededEvent) {
		switch e.CommandName {
		case "insert", "update", "delete":
		default:
			return
		}
		if e.DatabaseName != db {
			return
		}
		err := checkUniqueTriples(context.Background(), w.checker)
		w.mu.Lock()
		defer w.mu.Unlock()
		w.checks++
		if err != nil {
			w.found = append(w.found, fmt.Sprintf("after %s: %v", e.CommandName, err))
		}
	}}
	return connect(t, options.Client().SetMonitor(mon)), w
}

// violations returns what the checks found, and how many ran.
func (w *uniqueIndexWatch) violations() ([]string, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.found...), w.checks
}
