package relay_test

import (
	"context"
	"fmt"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/middleware/publish"
	"github.com/aggregatekit/eventsourcing/relay"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

type ItemShipped struct{ SKU string }

type Ship struct{ SKUs []string }

type Shipment struct {
	es.AggregateBase `json:"-"`
	Shipped          []string
}

func (s *Shipment) HandleShip(c Ship) ([]es.Event, error) {
	events := make([]es.Event, len(c.SKUs))
	for i, sku := range c.SKUs {
		events[i] = ItemShipped{SKU: sku}
	}
	return events, nil
}

func (s *Shipment) ReplayItemShipped(e ItemShipped) { s.Shipped = append(s.Shipped, e.SKU) }

// Relaying a store's commits to an in-process bus: the relay reads the
// memory store's feed after its checkpoint, so commits made while no relay
// ran (or before a crash) are delivered too.
func Example() {
	ctx := context.Background()
	registry := es.NewStandardEventRegistry("shipping")
	if err := registry.RegisterEvent(ItemShipped{}); err != nil {
		fmt.Println(err)
		return
	}
	store := es.NewStore(memory.NewBackend())
	defer store.Close()

	shipment := &Shipment{}
	shipment.Initialize("s-1", registry, store, func() any { return shipment })
	if err := shipment.AutomaticWireup(shipment); err != nil {
		fmt.Println(err)
		return
	}
	if err := shipment.Handle(ctx, Ship{SKUs: []string{"tea", "cup"}}); err != nil {
		fmt.Println(err)
		return
	}

	bus := publish.NewBus()
	publish.On(bus, func(ctx context.Context, e ItemShipped, rec es.Record) error {
		fmt.Printf("%s #%d shipped %s\n", rec.Stream, rec.Sequence, e.SKU)
		return nil
	})
	src, err := relay.FromBackend(es.BackendOf(store), "mailer")
	if err != nil {
		fmt.Println(err)
		return
	}
	r, err := relay.New(src, relay.ToPublisher(bus, registry))
	if err != nil {
		fmt.Println(err)
		return
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- r.Run(rctx) }()

	// An application runs the relay until it shuts down; here, stop once
	// it has caught up.
	for !r.Stats().CaughtUp {
		time.Sleep(time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		fmt.Println(err)
	}
	st := r.Stats()
	fmt.Printf("relayed %d commits, %d events, lag %v\n", st.Commits, st.Events, st.Lag)
	// Output:
	// Shipment/s-1 #1 shipped tea
	// Shipment/s-1 #2 shipped cup
	// relayed 1 commits, 2 events, lag 0s
}
