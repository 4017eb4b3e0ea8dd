package nats_test

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
	"github.com/aggregatekit/eventsourcing/middleware/publish/nats"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

// Publishing committed events to NATS JetStream (this example needs a
// server, so it is compiled but not run).
func Example() {
	ctx := context.Background()
	nc, err := natsgo.Connect(natsgo.DefaultURL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(10*time.Second))
	if err != nil {
		fmt.Println(err)
		return
	}
	// A stream capturing every event, de-duplicating republished ones for
	// an hour.
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:       "EVENTS",
		Subjects:   []string{"events.>"},
		Duplicates: time.Hour,
	}); err != nil {
		fmt.Println(err)
		return
	}
	pub, err := nats.New(js, nats.WithStream("EVENTS"))
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
	// Aggregates on store now publish each commit's events to
	// "events.<AggregateType>.<Key>"; a consumer of "events.Order.>" sees
	// every Order's events, each stream in order.
}
