package dynamostore_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/stores/dynamostore"
)

// Counted is the event of the example's aggregate.
type Counted struct{ By int64 }

// Count is its command.
type Count struct{ By int64 }

// Counter is an event-sourced aggregate.
type Counter struct {
	es.AggregateBase `json:"-"`
	Total            int64
}

func (c *Counter) HandleCount(cmd Count) ([]es.Event, error) { return []es.Event{Counted(cmd)}, nil }
func (c *Counter) ReplayCounted(e Counted)                   { c.Total += e.By }

// An event store over a table in Amazon DynamoDB. The client comes from the
// usual AWS configuration (environment, shared files, instance role); the
// example needs AWS, so it is compiled but not run.
func Example() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("eu-west-1"))
	if err != nil {
		log.Fatal(err)
	}
	client := dynamodb.NewFromConfig(cfg)

	// Once, at deployment (or create the table with your own tools; the
	// package documentation gives the layout).
	if err := dynamostore.CreateTable(ctx, client, "events"); err != nil {
		log.Fatal(err)
	}
	b, err := dynamostore.NewBackend(ctx, client, "events")
	if errors.Is(err, dynamostore.ErrTableSchema) {
		log.Fatalf("the table does not have the layout of this package: %v", err)
	} else if err != nil {
		log.Fatal(err)
	}
	store := es.NewStore(b)
	defer store.Close() // the client stays open: it is yours

	registry := es.NewStandardEventRegistry("Example")
	if err := registry.RegisterEvent(Counted{}); err != nil {
		log.Fatal(err)
	}
	c := &Counter{}
	c.Initialize("visits", registry, store, func() any { return c })
	if err := c.AutomaticWireup(c); err != nil {
		log.Fatal(err)
	}
	// One Query (the events since the last load) and one PutItem, which
	// also leaves the commit pending in the outbox.
	if err := c.Handle(ctx, Count{By: 1}); err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.Total, c.SequenceNumber())
}

// A client for DynamoDB Local or dynalite on this machine, for development
// and tests.
func ExampleLocalClient() {
	client := dynamostore.LocalClient("http://127.0.0.1:8000", "")
	o := client.Options()
	fmt.Println(o.Region, *o.BaseEndpoint)
	// Output: us-east-1 http://127.0.0.1:8000
}

// A relay loop over the outbox: take pending commits, hand them to a
// broker, mark them published. A crash between the two publishes them again
// after the restart, so the broker de-duplicates by commit ID. It needs a
// server, so it is compiled but not run.
func ExampleBackend_Pending() {
	ctx := context.Background()
	client := dynamostore.LocalClient("http://127.0.0.1:8000", "")
	b, err := dynamostore.NewBackend(ctx, client, "events")
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	publish := func(c backend.Commit) error { // your broker, keyed by c.ID
		fmt.Println("publish", c.ID, c.Stream, c.First(), c.Last())
		return nil
	}
	for ctx.Err() == nil {
		var done []backend.CommitRef
		for c, err := range b.Pending(ctx, 100) {
			if err != nil {
				log.Fatal(err)
			}
			if err := publish(c); err != nil {
				break // keep the stream order: retry from here next time
			}
			done = append(done, c.Ref())
		}
		if err := b.MarkPublished(ctx, done); err != nil {
			log.Print(err) // published again next time
		}
		if len(done) == 0 {
			time.Sleep(time.Second)
		}
	}
}
