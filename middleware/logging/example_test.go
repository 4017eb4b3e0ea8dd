package logging_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/sirupsen/logrus"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/middleware/logging"
	"github.com/aggregatekit/eventsourcing/stores/memory"
	"github.com/aggregatekit/eventsourcing/storetest"
)

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
	store := es.Wrap(memory.NewStore(), mw)
	defer store.Close()

	probe, err := storetest.NewProbe("order-1", "Order", storetest.NewRegistry(), store)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := probe.Handle(context.Background(), storetest.Add{Batch: "b", Size: 2}); err != nil {
		fmt.Println(err)
	}
	// Output:
	// level=DEBUG msg="eventsourcing refresh" aggregate_type=Order key=order-1 sequence_before=0 sequence_after=0 event_count=0
	// level=DEBUG msg="eventsourcing commit" aggregate_type=Order key=order-1 sequence_before=0 sequence_after=2 event_count=2 event_types="[Added Added]"
}

func ExampleNewLogrus() {
	logger := logrus.New()
	logger.SetOutput(os.Stdout)
	logger.SetLevel(logrus.DebugLevel)
	logger.SetFormatter(&logrus.TextFormatter{DisableTimestamp: true})
	mw, err := logging.NewLogrus(logger.WithField("service", "orders"))
	if err != nil {
		fmt.Println(err)
		return
	}
	store := es.Wrap(memory.NewStore(), mw)
	defer store.Close()
	probe, err := storetest.NewProbe("order-1", "Order", storetest.NewRegistry(), store)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := probe.Handle(context.Background(), storetest.Add{Batch: "b", Size: 2}); err != nil {
		fmt.Println(err)
	}
	// Lines like:
	// level=debug msg="eventsourcing commit" aggregate_type=Order duration="12.3µs" event_count=2 key=order-1 sequence_after=2 sequence_before=0 service=orders
}
