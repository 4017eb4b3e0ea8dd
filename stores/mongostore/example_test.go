package mongostore_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/middleware/snapshot"
	"github.com/aggregatekit/eventsourcing/stores/mongostore"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Counter is a small aggregate for the examples.
type Counter struct {
	es.AggregateBase `json:"-"`
	Count            int
}

// Increment is a command; Incremented its event.
type (
	Increment   struct{ By int }
	Incremented struct{ By int }
)

func (c *Counter) HandleIncrement(cmd Increment) ([]es.Event, error) {
	if cmd.By < 1 {
		return nil, errors.New("increment must be positive")
	}
	return []es.Event{Incremented(cmd)}, nil
}

func (c *Counter) ReplayIncremented(e Incremented) { c.Count += e.By }

// Example connects with a client the application owns, builds the event
// store over a Backend, with snapshots in their own collection, and
// handles a command. It needs a MongoDB server, so it is compiled but not
// run by go test.
func Example() {
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://127.0.0.1:27017/?serverSelectionTimeoutMS=2000"))
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = client.Disconnect(ctx) }()

	// NewBackend creates the indexes it needs (or, with
	// mongostore.WithoutIndexCreation, checks that an operator has).
	b, err := mongostore.NewBackend(ctx, client, "shop", "events")
	if err != nil {
		log.Fatal(err)
	}
	snapshots, err := mongostore.NewSnapshotStore(client, "shop", "snapshots")
	if err != nil {
		log.Fatal(err)
	}
	mw, err := snapshot.New(snapshots, snapshot.EveryN(100))
	if err != nil {
		log.Fatal(err)
	}
	store := es.Wrap(es.NewStore(b), mw)
	defer store.Close() // closes the Backend, which leaves the client connected

	registry := es.NewStandardEventRegistry("shop")
	if err := registry.RegisterEvent(Incremented{}); err != nil {
		log.Fatal(err)
	}
	c := &Counter{}
	c.Initialize("visits", registry, store, func() any { return c })
	if err := c.AutomaticWireup(c); err != nil {
		log.Fatal(err)
	}
	// One find (the stream's commits) and one insert (the new commit, with
	// its pending marker for the outbox).
	if err := c.Handle(es.WithCommandID(ctx, "visit-0001"), Increment{By: 2}); err != nil {
		log.Fatal(err)
	}
	fmt.Println("count:", c.Count)
}

// ExampleOpen opens a Backend that owns its connection: Close disconnects
// it.
func ExampleOpen() {
	ctx := context.Background()
	b, err := mongostore.Open(ctx, "mongodb://127.0.0.1:27017/?serverSelectionTimeoutMS=2000", "shop", "events",
		mongostore.WithBatchSize(500))
	if err != nil {
		log.Fatal(err)
	}
	store := es.NewStore(b)
	defer store.Close() // closes the Backend, which disconnects

	// A SnapshotStore may share the Backend's client until then.
	snapshots, err := mongostore.NewSnapshotStore(b.Client(), "shop", "snapshots")
	if err != nil {
		log.Fatal(err)
	}
	_ = snapshots
}

// ExampleBackend_Pending is the loop of a relay: it hands the pending
// commits to a publisher, oldest first within each stream, then marks them
// published. A crash between the two publishes them again on restart, so
// the publisher de-duplicates by commit ID. It needs a MongoDB server, so
// it is compiled but not run by go test.
func ExampleBackend_Pending() {
	ctx, stop := context.WithTimeout(context.Background(), time.Minute)
	defer stop()
	b, err := mongostore.Open(ctx, "mongodb://127.0.0.1:27017/?serverSelectionTimeoutMS=2000", "shop", "events")
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	publish := func(c backend.Commit) error { // a broker, with c.ID as the message ID
		fmt.Printf("%s: events %d to %d of %s\n", c.ID, c.First(), c.Last(), c.Stream)
		return nil
	}
	for ctx.Err() == nil {
		var done []backend.CommitRef
		for c, err := range b.Pending(ctx, 100) {
			if err != nil {
				log.Print(err) // a damaged commit: its stream waits, others go on
				break
			}
			if err := publish(c); err != nil {
				log.Print(err)
				break // the rest of the batch stays pending, in order
			}
			done = append(done, c.Ref())
		}
		if err := b.MarkPublished(ctx, done); err != nil {
			log.Print(err)
		}
		if len(done) == 0 {
			time.Sleep(time.Second)
		}
	}
}

// ExampleWithoutOutbox opens a Backend for an application that does not
// relay its commits: they are written without the pending marker.
func ExampleWithoutOutbox() {
	ctx := context.Background()
	b, err := mongostore.Open(ctx, "mongodb://127.0.0.1:27017/?serverSelectionTimeoutMS=2000", "shop", "events",
		mongostore.WithoutOutbox())
	if err != nil {
		log.Fatal(err)
	}
	store := es.NewStore(b)
	defer store.Close()
}
