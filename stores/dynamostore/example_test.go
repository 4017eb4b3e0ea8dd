package dynamodb_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	es "github.com/aggregatekit/eventsourcing"
	esdynamodb "github.com/aggregatekit/eventsourcing/stores/dynamodb"
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

// A store over a table in DynamoDB (here DynamoDB Local or dynalite on port
// 8000; drop BaseEndpoint to reach AWS). The example needs a server, so it
// is compiled but not run.
func Example() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("eu-west-1"))
	if err != nil {
		log.Fatal(err)
	}
	client := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String("http://127.0.0.1:8000")
	})

	// Once, at deployment (or create the table with your own tools; the
	// package documentation gives the schema).
	if err := esdynamodb.CreateTable(ctx, client, "events"); err != nil {
		log.Fatal(err)
	}
	store, err := esdynamodb.NewStore(ctx, client, "events")
	if errors.Is(err, esdynamodb.ErrTableSchema) {
		log.Fatalf("the table was created with another key schema: %v", err)
	} else if err != nil {
		log.Fatal(err)
	}
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
	// One Query (the events since the last load) and one PutItem.
	if err := c.Handle(ctx, Count{By: 1}); err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.Total, c.SequenceNumber())
}

// Handling a commit too large for one DynamoDB item.
func ExampleBackend_Append_tooLarge() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	backend, err := esdynamodb.NewBackend(ctx, dynamodb.NewFromConfig(cfg), "events")
	if err != nil {
		log.Fatal(err)
	}
	stream := es.StreamID{AggregateType: "Document", Key: "doc-1"}
	huge := es.Record{Stream: stream, Sequence: 1, EventType: "Uploaded", Data: make([]byte, 500<<10)}
	err = backend.Append(ctx, stream, 0, []es.Record{huge})
	var tooLarge *es.CommitTooLargeError
	if errors.As(err, &tooLarge) {
		// Nothing was written. Store the payload elsewhere (S3, say) and
		// commit an event holding its reference, or split the command.
		fmt.Printf("%d bytes, limit %d\n", tooLarge.Size, tooLarge.Limit)
	}
}
