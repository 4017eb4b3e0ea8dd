package telemetry_test

import (
	"context"
	"fmt"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/middleware/telemetry"
	"github.com/aggregatekit/eventsourcing/stores/memory"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

type Deposited struct{ Amount int64 }
type Deposit struct{ Amount int64 }

type Account struct {
	es.AggregateBase `json:"-"`
	Balance          int64
}

func (a *Account) HandleDeposit(c Deposit) ([]es.Event, error) { return []es.Event{Deposited(c)}, nil }
func (a *Account) ReplayDeposited(e Deposited)                 { a.Balance += e.Amount }

func NewAccount(key string, registry es.EventRegistry, store es.EventStore) (*Account, error) {
	a := &Account{}
	a.Initialize(key, registry, store, func() any { return a })
	return a, a.AutomaticWireup(a)
}

// The application's OpenTelemetry SDK (here with an in-memory exporter and
// a manual reader, as a test would set it up) receives a span per load and
// commit, and the store's metrics.
func Example() {
	ctx := context.Background()
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))

	mw, err := telemetry.New(telemetry.WithTracerProvider(tp), telemetry.WithMeterProvider(mp))
	if err != nil {
		panic(err)
	}
	store := es.Wrap(es.NewStore(memory.NewBackend()), mw)
	registry := es.NewStandardEventRegistry("bank")
	_ = registry.RegisterEvent(Deposited{})
	accounts := es.NewRepository(registry, store, NewAccount)

	ctx, request := tp.Tracer("http").Start(ctx, "POST /accounts/alice/deposits")
	if _, err := accounts.Handle(ctx, "alice", Deposit{Amount: 10}); err != nil {
		panic(err)
	}
	request.End()

	for _, s := range spans.GetSpans() {
		fmt.Print(s.Name)
		for _, a := range s.Attributes {
			switch a.Key {
			case telemetry.AttrEvents, telemetry.AttrOutcome, telemetry.AttrLast:
				fmt.Printf(" %s=%s", a.Key, a.Value.String())
			}
		}
		fmt.Println()
	}
	var rm metricdata.ResourceMetrics
	_ = reader.Collect(ctx, &rm)
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == telemetry.MetricEventsCommitted {
			fmt.Println(m.Name, sum.DataPoints[0].Value)
		}
	}
	// Output:
	// load Account eventsourcing.events=0 eventsourcing.outcome=ok
	// commit Account eventsourcing.sequence.last=1 eventsourcing.events=1 eventsourcing.outcome=ok
	// POST /accounts/alice/deposits
	// eventsourcing.events.committed 1
}
