package logging_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/middleware/logging"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

type OrderPlaced struct{ Items int }
type PlaceOrder struct{ Items int }

type Order struct {
	es.AggregateBase `json:"-"`
	Items            int
}

func (o *Order) HandlePlaceOrder(c PlaceOrder) ([]es.Event, error) {
	return []es.Event{OrderPlaced(c)}, nil
}

func (o *Order) ReplayOrderPlaced(e OrderPlaced) { o.Items += e.Items }

func ExampleNewSlog() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == logging.FieldDuration {
				return slog.Attr{} // drop what varies between runs
			}
			return a
		},
	}))
	mw, err := logging.NewSlog(logger, logging.WithEventTypes())
	if err != nil {
		fmt.Println(err)
		return
	}
	store := es.Wrap(es.NewStore(memory.NewBackend()), mw)
	defer store.Close()

	registry := es.NewStandardEventRegistry("shop")
	if err := registry.RegisterEvent(OrderPlaced{}); err != nil {
		fmt.Println(err)
		return
	}
	order := &Order{}
	order.Initialize("order-1", registry, store, func() any { return order })
	if err := order.AutomaticWireup(order); err != nil {
		fmt.Println(err)
		return
	}
	ctx := es.WithCommandID(context.Background(), "req-7f3a") // else a generated commit ID
	if err := order.Handle(ctx, PlaceOrder{Items: 2}); err != nil {
		fmt.Println(err)
	}
	// Output:
	// level=DEBUG msg="eventsourcing refresh" aggregate_type=Order key=order-1 sequence_before=0 sequence_after=0 event_count=0
	// level=DEBUG msg="eventsourcing commit" aggregate_type=Order key=order-1 commit_id=req-7f3a sequence_before=0 sequence_after=1 event_count=1 event_types=[OrderPlaced]
}
