package natsjs_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/middleware/publish"
	"github.com/aggregatekit/eventsourcing/middleware/publish/natsjs"
	"github.com/aggregatekit/eventsourcing/relay"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

// Publishing every commit to NATS JetStream exactly once: the after-commit
// middleware for low latency, and a relay for the guarantee, both through
// one Publisher. (This example needs a server, so it is compiled but not
// run.)
func Example() {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	nc, err := natsgo.Connect(natsgo.DefaultURL, natsgo.MaxReconnects(-1))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		fmt.Println(err)
		return
	}
	// A stream capturing every commit, on file, keeping each subject's last
	// message (Limits retention): what the Publisher needs.
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:     "EVENTS",
		Subjects: []string{"events.>"},
		Storage:  jetstream.FileStorage,
	}); err != nil {
		fmt.Println(err)
		return
	}
	pub, err := natsjs.New(js, "EVENTS")
	if err != nil {
		fmt.Println(err)
		return
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	mw, err := publish.New(pub, publish.WithLogger(logger))
	if err != nil {
		fmt.Println(err)
		return
	}
	store := es.Wrap(es.NewStore(memory.NewBackend()), mw)
	defer store.Close()

	src, err := relay.FromBackend(es.BackendOf(store), "jetstream")
	if err != nil {
		fmt.Println(err)
		return
	}
	r, err := relay.New(src, pub, relay.WithLogger(logger))
	if err != nil {
		fmt.Println(err)
		return
	}
	go func() { _ = r.Run(ctx) }()
	// Aggregates on store now publish each commit as one message on
	// "events.<AggregateType>.<Key>"; a consumer of "events.Order.>" sees
	// every Order's commits, each stream in order, each once.
}

// Reading commits back from JetStream, for a read side.
func ExampleDecodeCommit() {
	ctx := context.Background()
	nc, err := natsgo.Connect(natsgo.DefaultURL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		fmt.Println(err)
		return
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, "EVENTS", jetstream.ConsumerConfig{
		Durable:       "orders-view",
		FilterSubject: "events.Order.>",
		AckPolicy:     jetstream.AckExplicitPolicy,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	batch, err := cons.Fetch(100, jetstream.FetchMaxWait(time.Second))
	if err != nil {
		fmt.Println(err)
		return
	}
	for msg := range batch.Messages() {
		c, err := natsjs.DecodeCommit(msg.Headers(), msg.Data())
		if err != nil {
			fmt.Println(err) // not a commit: park it rather than retry forever
			_ = msg.Term()
			continue
		}
		for _, rec := range c.Records {
			fmt.Println(rec.Stream, rec.Sequence, rec.EventType, c.ID)
		}
		_ = msg.Ack()
	}
}
