package projection_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/internal/cputime"
	"github.com/aggregatekit/eventsourcing/internal/latencybench"
	"github.com/aggregatekit/eventsourcing/internal/probe"
	"github.com/aggregatekit/eventsourcing/projection"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

// BenchmarkProjectMemoryFeed projects b.N stored events (commits of 2,
// over 16 streams) from the memory store's feed into an in-memory read
// model, against a baseline that reads the same feed and decodes and
// applies the same events in a hand-written loop (with the per-stream
// sequence check, without checkpoints, policy or reflection). It reports
// events/s and CPU time per event.
func BenchmarkProjectMemoryFeed(b *testing.B) {
	for _, mode := range []string{"baseline", "runner"} {
		b.Run(mode, func(b *testing.B) {
			m := memory.NewBackend()
			heads := map[es.StreamID]int64{}
			appendAdds(b, m, streamsOf(16), (b.N+1)/2, 2, heads, "bench")
			ctx := context.Background()
			model := newTally()
			cpu0 := cputime.Process()
			b.ResetTimer()
			start := time.Now()
			switch mode {
			case "baseline":
				seqs := map[es.StreamID]int64{}
				for c, err := range m.ReadFeed(ctx, "") {
					if err != nil {
						b.Fatal(err)
					}
					for _, rec := range c.Records {
						if rec.Sequence != seqs[c.Stream]+1 {
							b.Fatal("gap")
						}
						seqs[c.Stream] = rec.Sequence
						var e probe.Added
						if err := json.Unmarshal(rec.Data, &e); err != nil {
							b.Fatal(err)
						}
						_ = model.ProjectAdded(projection.Event{Stream: c.Stream, Sequence: rec.Sequence}, e)
					}
				}
			case "runner":
				p, err := projection.New("bench", probe.NewRegistry(), model)
				if err != nil {
					b.Fatal(err)
				}
				r, err := projection.NewRunner(p, projection.FromFeed(m), projection.NewMemoryStore())
				if err != nil {
					b.Fatal(err)
				}
				if err := r.CatchUp(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			elapsed := time.Since(start)
			if n := model.count(); n < b.N {
				b.Fatalf("applied %d of %d", n, b.N)
			}
			b.ReportMetric(float64(model.count())/elapsed.Seconds(), "events/s")
			b.ReportMetric(float64(cputime.Process()-cpu0)/float64(model.count()), "cpu-ns/event")
		})
	}
}

// BenchmarkLatencyMemoryFeed measures the time from a command's commit to
// the moment its event is in the read model (the unit of work that applied
// it committed): 4 writers commit b.N commands of one event through
// aggregates on the memory store, each at most one every 250 µs (16,000
// commands/s in all, below what the runner sustains, so that the figure is
// latency, not backlog), while a runner follows its feed. It reports p50
// and p99 in microseconds, and CPU time per command (writers and runner).
func BenchmarkLatencyMemoryFeed(b *testing.B) {
	m := memory.NewBackend()
	store := es.NewStore(m)
	reg := probe.NewRegistry()
	var lat latencybench.Recorder
	model := newTally()
	model.fail = func(ev projection.Event, e probe.Added) error { lat.Applied(ev.Time); return nil }
	p, err := projection.New("latency", reg, model)
	if err != nil {
		b.Fatal(err)
	}
	r, err := projection.NewRunner(p, projection.FromFeed(m), projection.NewMemoryStore(),
		projection.WithHooks(projection.Hooks{Batch: func(projection.Batch) { lat.Committed() }}))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	cpu0 := cputime.Process()
	b.ResetTimer()
	latencybench.WriteCommands(b, ctx, reg, store, 4, b.N, 250*time.Microsecond)
	lat.Wait(b, b.N)
	cancel()
	<-done
	lat.Report(b, cpu0)
}
