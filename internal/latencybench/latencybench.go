// Package latencybench is what the read-side latency benchmarks share:
// paced writers that commit one event per command, and a Recorder that
// measures how long each event takes from its commit to the read model's
// committed unit of work, reported as p50, p99 and CPU time per event.
package latencybench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/internal/cputime"
	"github.com/aggregatekit/eventsourcing/internal/probe"
)

// WriteCommands commits n commands of one probe.Added event from writers
// goroutines, each on a stream of its own ("lat-0", "lat-1", ...), each at
// most one command per pace. It returns when all are committed; a failed
// command fails b.
func WriteCommands(b *testing.B, ctx context.Context, reg es.EventRegistry, store es.EventStore, writers, n int, pace time.Duration) {
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

// Recorder collects commit-to-read-model latencies. The read model calls
// Applied for each event it applies; the runner's Batch hook calls
// Committed once the unit of work holding them is stored. It is safe for
// concurrent use.
type Recorder struct {
	mu      sync.Mutex
	pending []time.Time
	got     []time.Duration
}

// Applied notes an applied event committed at commit.
func (r *Recorder) Applied(commit time.Time) {
	r.mu.Lock()
	r.pending = append(r.pending, commit)
	r.mu.Unlock()
}

// Committed stamps every event noted since the last call with now.
func (r *Recorder) Committed() {
	now := time.Now()
	r.mu.Lock()
	for _, t := range r.pending {
		r.got = append(r.got, now.Sub(t))
	}
	r.pending = r.pending[:0]
	r.mu.Unlock()
}

func (r *Recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// Wait waits until n events are stamped, for at most a minute, then stops
// b's timer.
func (r *Recorder) Wait(b *testing.B, n int) {
	for deadline := time.Now().Add(time.Minute); r.count() < n && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
}

// Report fails b if fewer than b.N events were stamped, and otherwise
// reports their p50 and p99 in microseconds and the process's CPU time
// since cpu0 (see cputime.Process) per op.
func (r *Recorder) Report(b *testing.B, cpu0 time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.got) < b.N {
		b.Fatalf("%d of %d events applied", len(r.got), b.N)
	}
	s := slices.Clone(r.got)
	slices.Sort(s)
	b.ReportMetric(float64(s[len(s)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(s[len(s)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N), "cpu-ns/op")
}
