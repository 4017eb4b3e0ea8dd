package mongostore_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	es "github.com/aggregatekit/eventsourcing"
	esmongo "github.com/aggregatekit/eventsourcing/stores/mongo"
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
// store and a snapshot store on it, and handles a command. It needs a server,
// so it is compiled but not run by go test.
func Example() {
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://127.0.0.1:27017/?serverSelectionTimeoutMS=2000"))
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = client.Disconnect(ctx) }()

	// NewStore creates the index it needs (or, with
	// esmongo.WithoutIndexCreation, checks that an operator has).
	store, err := esmongo.NewStore(ctx, client, "shop", "events")
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close() // does not disconnect a client it does not own

	// Snapshots live in their own collection; wrap the store with the
	// snapshot middleware to use them.
	snapshots, err := esmongo.NewSnapshotStore(client, "shop", "snapshots")
	if err != nil {
		log.Fatal(err)
	}
	_ = snapshots

	registry := es.NewStandardEventRegistry("shop")
	if err := registry.RegisterEvent(Incremented{}); err != nil {
		log.Fatal(err)
	}
	c := &Counter{}
	c.Initialize("visits", registry, store, func() any { return c })
	if err := c.AutomaticWireup(c); err != nil {
		log.Fatal(err)
	}
	// One find (the stream's commits) and one insert (the new commit).
	if err := c.Handle(ctx, Increment{By: 2}); err != nil {
		log.Fatal(err)
	}
	fmt.Println("count:", c.Count)
}

// ExampleOpen opens a Backend that owns its connection: Close disconnects
// it.
func ExampleOpen() {
	ctx := context.Background()
	backend, err := esmongo.Open(ctx, "mongodb://127.0.0.1:27017/?serverSelectionTimeoutMS=2000", "shop", "events",
		esmongo.WithBatchSize(500))
	if err != nil {
		log.Fatal(err)
	}
	store := es.NewStore(backend)
	defer store.Close() // closes the backend, which disconnects

	// A SnapshotStore may share the backend's client until then.
	snapshots, err := esmongo.NewSnapshotStore(backend.Client(), "shop", "snapshots")
	if err != nil {
		log.Fatal(err)
	}
	_ = snapshots
}
