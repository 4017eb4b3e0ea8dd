package peers_test

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aggregatekit/eventsourcing/tools/bench/peers/internal/bank"
)

// processCPU returns the user plus system CPU time the process has used.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// meter measures the process CPU time spent while the benchmark timer runs,
// and reports it per operation as cpu-ns/op.
type meter struct {
	b   *testing.B
	cpu time.Duration
	t0  time.Duration
}

// start resets the benchmark timer and starts measuring.
func start(b *testing.B) *meter {
	b.ReportAllocs()
	m := &meter{b: b}
	b.ResetTimer()
	m.t0 = processCPU(b)
	return m
}

// pause stops the timer and the CPU clock, for untimed setup.
func (m *meter) pause() {
	m.b.StopTimer()
	m.cpu += processCPU(m.b) - m.t0
}

// resume restarts both.
func (m *meter) resume() {
	m.t0 = processCPU(m.b)
	m.b.StartTimer()
}

// done stops measuring and reports cpu-ns/op.
func (m *meter) done() {
	m.pause()
	m.b.ReportMetric(float64(m.cpu.Nanoseconds())/float64(m.b.N), "cpu-ns/op")
}

// sink keeps the last instance of BenchmarkNewInstance.
var sink any

// BenchmarkNewInstance constructs a ready instance (allocation and wire-up)
// per op. The -json variants are left out: they differ from their library
// only in the store.
func BenchmarkNewInstance(b *testing.B) {
	for _, lib := range libraries(b) {
		if strings.HasSuffix(lib.Name(), "-json") {
			continue
		}
		b.Run(lib.Name(), func(b *testing.B) {
			id := bank.NewID()
			m := start(b)
			sink = lib.NewInstances(id, b.N)
			m.done()
		})
	}
}

// freshStreams is how many new accounts a store of BenchmarkFreshCommand
// receives before it is replaced by an empty one (untimed), so that the
// stores stay small. Each replacement stops and restarts the benchmark
// timer, which reads the memory statistics (stopping the world) and so
// costs every library the same few microseconds of CPU time; at 2,048
// streams per store that is well under 1% of an op.
const freshStreams = 2048

// BenchmarkFreshCommand runs one Deposit per op on a new account: new
// instance, load of an empty stream, decide, commit, apply.
func BenchmarkFreshCommand(b *testing.B) {
	ctx := context.Background()
	for _, lib := range libraries(b) {
		b.Run(lib.Name(), func(b *testing.B) {
			var st bank.Store
			var ids []bank.ID
			m := start(b)
			for i := 0; i < b.N; i++ {
				if i%freshStreams == 0 {
					m.pause()
					var err error
					if st, err = lib.NewStore(); err != nil {
						b.Fatal(err)
					}
					ids = bank.IDs(freshStreams)
					m.resume()
				}
				if err := st.Command(ctx, ids[i%freshStreams], 1); err != nil {
					b.Fatal(err)
				}
			}
			m.done()
			if _, v, err := st.Rebuild(ctx, ids[(b.N-1)%freshStreams]); err != nil || v != 1 {
				b.Fatalf("last account: version %d, %v", v, err)
			}
		})
	}
}

// BenchmarkCommand1000 runs one Deposit per op on a new instance of an
// account with 1,000 events: the instance loads them, decides, commits and
// applies. Each op gets a new store holding one stream of exactly 1,000
// events, seeded untimed through the library's own save path.
func BenchmarkCommand1000(b *testing.B) {
	ctx := context.Background()
	const n = 1000
	for _, lib := range libraries(b) {
		b.Run(lib.Name(), func(b *testing.B) {
			m := start(b)
			for i := 0; i < b.N; i++ {
				m.pause()
				st, err := lib.NewStore()
				if err != nil {
					b.Fatal(err)
				}
				id := bank.NewID()
				if err := st.Seed(ctx, id, n); err != nil {
					b.Fatal(err)
				}
				m.resume()
				if err := st.Command(ctx, id, 1); err != nil {
					b.Fatal(err)
				}
				if i == b.N-1 {
					m.pause()
					if bal, v, err := st.Rebuild(ctx, id); err != nil || v != n+1 || bal != bank.SeedBalance(n)+1 {
						b.Fatalf("after the command: balance %d version %d, %v", bal, v, err)
					}
					m.resume()
				}
			}
			m.done()
		})
	}
}

// BenchmarkRebuild10000 loads a stream of 10,000 events into a new instance
// per op.
func BenchmarkRebuild10000(b *testing.B) {
	ctx := context.Background()
	const n = 10000
	want := bank.SeedBalance(n)
	for _, lib := range libraries(b) {
		b.Run(lib.Name(), func(b *testing.B) {
			st, err := lib.NewStore()
			if err != nil {
				b.Fatal(err)
			}
			id := bank.NewID()
			if err := st.Seed(ctx, id, n); err != nil {
				b.Fatal(err)
			}
			m := start(b)
			for i := 0; i < b.N; i++ {
				bal, v, err := st.Rebuild(ctx, id)
				if err != nil || v != n || bal != want {
					b.Fatalf("rebuilt balance %d version %d, %v", bal, v, err)
				}
			}
			m.done()
		})
	}
}

// warmStreams is how many commands one kept instance handles before it and
// its store are replaced (untimed), so that memory stays bounded.
const warmStreams = 16384

// BenchmarkWarmCommand runs one Deposit per op on an instance kept between
// commands. Ours reloads before deciding (Handle always refreshes, here
// finding nothing new); the peers decide and save without reloading, their
// cheapest correct path (their stores refuse a stale instance).
func BenchmarkWarmCommand(b *testing.B) {
	ctx := context.Background()
	for _, lib := range libraries(b) {
		b.Run(lib.Name(), func(b *testing.B) {
			var acct bank.Account
			var done int
			m := start(b)
			for i := 0; i < b.N; i++ {
				if i%warmStreams == 0 {
					m.pause()
					if acct != nil && acct.Balance() != int64(done) {
						b.Fatalf("balance %d after %d deposits of 1", acct.Balance(), done)
					}
					st, err := lib.NewStore()
					if err != nil {
						b.Fatal(err)
					}
					if acct, err = st.Open(ctx, bank.NewID()); err != nil {
						b.Fatal(err)
					}
					done = 0
					m.resume()
				}
				if err := acct.Deposit(ctx, 1); err != nil {
					b.Fatal(err)
				}
				done++
			}
			m.done()
			if acct.Balance() != int64(done) || acct.Version() != done {
				b.Fatalf("balance %d version %d after %d deposits of 1", acct.Balance(), acct.Version(), done)
			}
		})
	}
}
