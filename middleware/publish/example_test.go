package publish_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/middleware/publish"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

type LineAdded struct{ SKU string }
type AddLines struct{ SKUs []string }

type Order struct {
	es.AggregateBase `json:"-"`
	Lines            []string
}

func (o *Order) HandleAddLines(c AddLines) ([]es.Event, error) {
	events := make([]es.Event, len(c.SKUs))
	for i, sku := range c.SKUs {
		events[i] = LineAdded{SKU: sku}
	}
	return events, nil
}

func (o *Order) ReplayLineAdded(e LineAdded) { o.Lines = append(o.Lines, e.SKU) }

func Example() {
	// An in-process bus with a typed handler.
	bus := publish.NewBus()
	publish.On(bus, func(ctx context.Context, e LineAdded, rec es.Record) error {
		fmt.Printf("%s #%d %s: %s (correlation %s)\n", rec.Stream, rec.Sequence, rec.EventType, e.SKU, rec.Metadata[es.MetadataCorrelationID])
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
	store := es.Wrap(es.NewStore(memory.NewBackend()), mw)
	defer store.Close()

	registry := es.NewStandardEventRegistry("shop")
	if err := registry.RegisterEvent(LineAdded{}); err != nil {
		fmt.Println(err)
		return
	}
	order := &Order{}
	order.Initialize("order-1", registry, store, func() any { return order })
	if err := order.AutomaticWireup(order); err != nil {
		fmt.Println(err)
		return
	}
	ctx := es.WithCorrelationID(context.Background(), "req-7")
	if err := order.Handle(ctx, AddLines{SKUs: []string{"tea", "cup"}}); err != nil {
		fmt.Println(err)
	}
	// Output:
	// Order/order-1 #1 LineAdded: tea (correlation req-7)
	// Order/order-1 #2 LineAdded: cup (correlation req-7)
}
