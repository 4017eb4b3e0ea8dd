package projection_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/internal/cputime"
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
	lat := newLatencies()
	model := newTally()
	model.fail = func(ev projection.Event, e probe.Added) error { lat.applied(ev.Time); return nil }
	p, err := projection.New("latency", reg, model)
	if err != nil {
		b.Fatal(err)
	}
	r, err := projection.NewRunner(p, projection.FromFeed(m), projection.NewMemoryStore(),
		projection.WithHooks(projection.Hooks{Batch: func(projection.Batch) { lat.committed() }}))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	cpu0 := cputime.Process()
	b.ResetTimer()
	writeCommands(b, ctx, reg, store, 4, b.N, 250*time.Microsecond)
	waitFor(b, "the read model", func() bool { return model.count() >= b.N })
	b.StopTimer()
	cancel()
	<-done
	p50, p99 := lat.percentiles()
	b.ReportMetric(float64(p50.Microseconds()), "p50-µs")
	b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
	b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N), "cpu-ns/op")
}

// writeCommands commits n commands of one Added event from writers
// goroutines, each on a stream of its own, each at most one command per
// pace.
func writeCommands(b *testing.B, ctx context.Context, reg es.EventRegistry, store es.EventStore, writers, n int, pace time.Duration) {
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Go(func() {
			pr, err := probe.New(fmt.Sprintf("lat-%d", w), "", reg, store)
			if err != nil {
				b.Error(err)
				return
			}
			tick := time.NewTicker(pace)
			defer tick.Stop()
			for i := w; i < n; i += writers {
				<-tick.C
				if err := pr.Handle(ctx, probe.Add{Batch: fmt.Sprintf("c%d", i), Size: 1}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// latencies collects commit-to-read-model latencies: applied notes an
// event's commit time, committed stamps every noted one with now.
type latencies struct {
	mu      sync.Mutex
	pending []time.Time
	got     []time.Duration
}

func newLatencies() *latencies { return &latencies{} }

func (l *latencies) applied(commit time.Time) {
	l.mu.Lock()
	l.pending = append(l.pending, commit)
	l.mu.Unlock()
}

func (l *latencies) committed() {
	now := time.Now()
	l.mu.Lock()
	for _, t := range l.pending {
		l.got = append(l.got, now.Sub(t))
	}
	l.pending = l.pending[:0]
	l.mu.Unlock()
}

func (l *latencies) percentiles() (p50, p99 time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.got) == 0 {
		return 0, 0
	}
	s := slices.Clone(l.got)
	slices.Sort(s)
	return s[len(s)/2], s[min(len(s)-1, len(s)*99/100)]
}
