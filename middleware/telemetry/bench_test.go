//go:build unix

package telemetry_test

import (
	"context"
	"slices"
	"testing"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/internal/cputime"
	"github.com/aggregatekit/eventsourcing/middleware/telemetry"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

// BenchmarkOverhead runs one command per op (a load that finds nothing new,
// a decision, a commit of one event) on the memory store: bare, under the
// middleware with no-op providers (no SDK installed), and under the
// middleware with the SDK (every span sampled and batched to an exporter
// that drops it; metrics aggregated for a reader). The memory store is the
// worst case for the ratio: a database's round trip dwarfs the
// middleware's cost. The paired variants alternate the middleware and the
// bare store in one loop and report the median ratio of their times.
func BenchmarkOverhead(b *testing.B) {
	ctx := context.Background()
	registry := es.NewStandardEventRegistry("bank")
	if err := registry.RegisterEvent(Deposited{}); err != nil {
		b.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() { _ = tp.Shutdown(ctx); _ = mp.Shutdown(ctx) })
	withSDK, err := telemetry.New(telemetry.WithTracerProvider(tp), telemetry.WithMeterProvider(mp))
	if err != nil {
		b.Fatal(err)
	}
	withNoop, err := telemetry.New(telemetry.WithTracerProvider(tracenoop.NewTracerProvider()), telemetry.WithMeterProvider(metricnoop.NewMeterProvider()))
	if err != nil {
		b.Fatal(err)
	}
	command := func(mw es.Middleware) func() {
		store := es.Wrap(es.NewStore(memory.NewBackend()), mw)
		a, err := NewAccount("k", registry, store)
		if err != nil {
			b.Fatal(err)
		}
		return func() {
			if err := a.Handle(ctx, Deposit{Amount: 1}); err != nil {
				b.Fatal(err)
			}
		}
	}
	single := func(mw es.Middleware) func(*testing.B) {
		return func(b *testing.B) {
			run := command(mw)
			b.ReportAllocs()
			t0 := cputime.Process()
			for b.Loop() {
				run()
			}
			b.ReportMetric(float64((cputime.Process()-t0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	}
	paired := func(mw es.Middleware, unit string) func(*testing.B) {
		return func(b *testing.B) {
			run, bare := command(mw), command(nil)
			var ratios []float64
			for b.Loop() {
				t0 := time.Now()
				run()
				t1 := time.Now()
				bare()
				ratios = append(ratios, float64(t1.Sub(t0))/float64(time.Since(t1)))
			}
			slices.Sort(ratios)
			b.ReportMetric(ratios[len(ratios)/2], unit)
		}
	}
	b.Run("bare", single(nil))
	b.Run("noop", single(withNoop))
	b.Run("sdk", single(withSDK))
	b.Run("paired-noop", paired(withNoop, "noop/bare"))
	b.Run("paired-sdk", paired(withSDK, "sdk/bare"))
}
