package publish_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/middleware/publish"
	"github.com/aggregatekit/eventsourcing/stores/memory"
	"github.com/aggregatekit/eventsourcing/storetest"
)

func Example() {
	// An in-process bus with a typed handler.
	bus := publish.NewBus()
	publish.On(bus, func(ctx context.Context, e storetest.Added, rec es.Record) error {
		fmt.Printf("%s #%d %s: %s (correlation %s)\n", rec.Stream, rec.Sequence, rec.EventType, e.ID, rec.Metadata[es.MetadataCorrelationID])
		return nil
	})
	// Failures are reported, not returned: the commit has succeeded.
	mw, err := publish.New(bus,
		publish.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))),
		publish.WithErrorHandler(func(ctx context.Context, err *publish.Error) {
			fmt.Println("not published:", err)
		}))
	if err != nil {
		fmt.Println(err)
		return
	}
	store := es.Wrap(memory.NewStore(), mw)
	defer store.Close()

	order, err := storetest.NewProbe("order-1", "Order", storetest.NewRegistry(), store)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := es.WithCorrelationID(context.Background(), "req-7")
	if err := order.Handle(ctx, storetest.Add{Batch: "line", Size: 2}); err != nil {
		fmt.Println(err)
	}
	// Output:
	// Order/order-1 #1 Added: line-0 (correlation req-7)
	// Order/order-1 #2 Added: line-1 (correlation req-7)
}
