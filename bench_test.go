package eventsourcing_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/internal/cputime"
	"github.com/aggregatekit/eventsourcing/internal/dispatchtest"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

// BenchmarkWireup measures what each new aggregate instance costs once its
// type has been wired before: Initialize plus AutomaticWireup on a kept
// struct and state closure, and Kind.Bind on a new struct.
func BenchmarkWireup(b *testing.B) {
	reg := bankRegistry(b)
	store := es.NewStore(memory.NewBackend())
	b.Run("initialize", func(b *testing.B) {
		a := &Account{}
		state := func() any { return a }
		b.ReportAllocs()
		for b.Loop() {
			a.Initialize("k", reg, store, state)
			if err := a.AutomaticWireup(a); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("kind", func(b *testing.B) {
		accounts, err := es.NewKind[*Account](reg, store)
		if err != nil {
			b.Fatal(err)
		}
		var last *Account
		b.ReportAllocs()
		for b.Loop() {
			a := &Account{}
			if err := accounts.Bind(a, "k"); err != nil {
				b.Fatal(err)
			}
			last = a
		}
		_ = last
	})
}

const rebuildEvents = 10000

// historyBackend returns a memory backend holding one account stream of n
// events, alternating deposits and withdrawals, stored through the library.
func historyBackend(b *testing.B, reg es.EventRegistry, n int) *memory.Backend {
	b.Helper()
	backend := memory.NewBackend()
	a, err := newAccount("history", reg, es.NewStore(backend))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < n; i += 100 {
		err := a.Run(ctx, func(context.Context) ([]es.Event, error) {
			events := make([]es.Event, 0, 100)
			for j := 0; j < 100; j++ {
				if j%2 == 0 {
					events = append(events, Deposited{Amount: int64(10 + j)})
				} else {
					events = append(events, Withdrawn{Amount: 3})
				}
			}
			return events, nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return backend
}

// BenchmarkRebuild compares rebuilding an aggregate from 10,000 stored
// events through the library (registry lookup, typed decode, reflective
// replay) with a hand-written loop over the same records that switches on the
// type name and decodes into concrete types.
func BenchmarkRebuild(b *testing.B) {
	reg := bankRegistry(b)
	backend := historyBackend(b, reg, rebuildEvents)
	store := es.NewStore(backend)
	stream := es.StreamID{AggregateType: "Account", Key: "history"}
	ctx := context.Background()
	var want int64

	library := func(b *testing.B) {
		a := &Account{}
		a.Initialize("history", reg, store, func() any { return a })
		if err := a.AutomaticWireup(a); err != nil {
			b.Fatal(err)
		}
		if err := a.Refresh(ctx); err != nil {
			b.Fatal(err)
		}
		if a.SequenceNumber() != rebuildEvents {
			b.Fatalf("sequence %d", a.SequenceNumber())
		}
		want = a.Balance
	}
	// manual rebuilds through DefineReplayMethod: the library without
	// reflective calls.
	manual := func(b *testing.B) {
		a := &Account{}
		a.Initialize("history", reg, store, func() any { return a })
		_ = a.DefineReplayMethod(Deposited{}, func(e es.Event) { a.ReplayDeposited(e.(Deposited)) })
		_ = a.DefineReplayMethod(Withdrawn{}, func(e es.Event) { w := e.(Withdrawn); a.ReplayWithdrawn(&w) })
		if err := a.Refresh(ctx); err != nil {
			b.Fatal(err)
		}
		if a.SequenceNumber() != rebuildEvents || (want != 0 && a.Balance != want) {
			b.Fatalf("sequence %d balance %d", a.SequenceNumber(), a.Balance)
		}
	}
	// generated rebuilds through the dispatch methods cmd/esgen writes (an
	// aggregate of the same shape in internal/dispatchtest, over the same
	// records): the convention kept, without reflective calls.
	genReg := dispatchtest.Registry()
	genStore := es.NewStore(backend)
	generated := func(b *testing.B) {
		a, err := dispatchtest.New("history", genReg, genStore)
		if err != nil {
			b.Fatal(err)
		}
		if err := a.Refresh(ctx); err != nil {
			b.Fatal(err)
		}
		if a.SequenceNumber() != rebuildEvents || (want != 0 && a.Balance != want) {
			b.Fatalf("sequence %d balance %d", a.SequenceNumber(), a.Balance)
		}
	}
	handwritten := func(b *testing.B) {
		var balance, seq int64
		for rec, err := range backend.Load(ctx, stream, 0) {
			if err != nil {
				b.Fatal(err)
			}
			if rec.Sequence != seq+1 {
				b.Fatal("gap")
			}
			seq = rec.Sequence
			switch rec.EventType {
			case "Deposited":
				var e Deposited
				if err := json.Unmarshal(rec.Data, &e); err != nil {
					b.Fatal(err)
				}
				balance += e.Amount
			case "Withdrawn":
				var e Withdrawn
				if err := json.Unmarshal(rec.Data, &e); err != nil {
					b.Fatal(err)
				}
				balance -= e.Amount
			default:
				b.Fatalf("unknown type %s", rec.EventType)
			}
		}
		if want != 0 && balance != want {
			b.Fatalf("balance %d, library got %d", balance, want)
		}
	}
	// handwrittenCodec is handwritten over dispatchtest's events through
	// JSONCodec, which decodes them with the DecodeJSON methods cmd/esgen
	// writes: the floor of the generated path with the same codec.
	handwrittenCodec := func(b *testing.B) {
		var balance, seq int64
		codec := es.JSONCodec{}
		for rec, err := range backend.Load(ctx, stream, 0) {
			if err != nil {
				b.Fatal(err)
			}
			if rec.Sequence != seq+1 {
				b.Fatal("gap")
			}
			seq = rec.Sequence
			switch rec.EventType {
			case "Deposited":
				var e dispatchtest.Deposited
				if err := codec.Unmarshal(rec.Data, &e); err != nil {
					b.Fatal(err)
				}
				balance += e.Amount
			case "Withdrawn":
				var e dispatchtest.Withdrawn
				if err := codec.Unmarshal(rec.Data, &e); err != nil {
					b.Fatal(err)
				}
				balance -= e.Amount
			default:
				b.Fatalf("unknown type %s", rec.EventType)
			}
		}
		if want != 0 && balance != want {
			b.Fatalf("balance %d, library got %d", balance, want)
		}
	}
	b.Run("library", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			library(b)
		}
	})
	b.Run("manual", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			manual(b)
		}
	})
	b.Run("generated", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			generated(b)
		}
	})
	b.Run("handwritten", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			handwritten(b)
		}
	})
	// The paired runs alternate one path and the baseline in one loop, so
	// that both see the same machine load, and report their median ratio.
	b.Run("paired", func(b *testing.B) { pairedRatio(b, library, handwritten, "library/handwritten") })
	b.Run("paired-manual", func(b *testing.B) { pairedRatio(b, manual, handwritten, "manual/handwritten") })
	b.Run("paired-generated", func(b *testing.B) { pairedRatio(b, generated, handwrittenCodec, "generated/handwritten") })
}

// pairedRatio runs f and then base in each iteration and reports the median
// of f's time over base's as unit.
func pairedRatio(b *testing.B, f, base func(*testing.B), unit string) {
	var ratios []float64
	for b.Loop() {
		t0 := time.Now()
		f(b)
		t1 := time.Now()
		base(b)
		ratios = append(ratios, float64(t1.Sub(t0))/float64(time.Since(t1)))
	}
	slices.Sort(ratios)
	b.ReportMetric(ratios[len(ratios)/2], unit)
}

// BenchmarkCommand measures one command on the memory store: refresh (no
// new events), handle, apply, commit.
func BenchmarkCommand(b *testing.B) {
	reg := bankRegistry(b)
	a, err := newAccount("cmd", reg, es.NewStore(memory.NewBackend()))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := a.Handle(ctx, Deposit{Amount: 1}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParallelAggregates runs commands from 1 goroutine on 1 aggregate,
// and from 8 goroutines on 8 aggregates of one store. ns/op is wall time per
// command, so the wall-time speed-up is the ratio of the two; cpu-ns/op is
// the process's CPU time per command (the garbage collector's included),
// which shows whether the goroutines pay for each other (it would rise) or
// only share the cores (it stays flat). On 2 cores the speed-up cannot
// exceed 2, and with the collector already using the second core in the
// single-goroutine run it stays well below.
func BenchmarkParallelAggregates(b *testing.B) {
	for _, workers := range []int{1, 8} {
		b.Run(fmt.Sprintf("goroutines=%d", workers), func(b *testing.B) {
			reg := bankRegistry(b)
			store := es.NewStore(memory.NewBackend())
			accts := make([]*Account, workers)
			for i := range accts {
				a, err := newAccount(fmt.Sprintf("p%d", i), reg, store)
				if err != nil {
					b.Fatal(err)
				}
				accts[i] = a
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cputime.Process()
			var wg sync.WaitGroup
			for w, a := range accts {
				n := b.N / workers
				if w < b.N%workers {
					n++
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < n; i++ {
						if err := a.Handle(ctx, Deposit{Amount: 1}); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64((cputime.Process()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkCommitSize measures a command raising n events at once on the
// memory store; ns/event shows the per-event share of a commit.
func BenchmarkCommitSize(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			reg := bankRegistry(b)
			a, err := newAccount("size", reg, es.NewStore(memory.NewBackend()))
			if err != nil {
				b.Fatal(err)
			}
			events := make([]es.Event, n)
			for i := range events {
				events[i] = Deposited{Amount: 1}
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := a.Run(ctx, func(context.Context) ([]es.Event, error) { return events, nil }); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
		})
	}
}

// BenchmarkContention races w goroutines, each with its own instance, on
// ONE aggregate of the memory store. ns/op is wall time per acknowledged
// command; attempts/cmd counts how often a command ran its handler (1 means
// no conflict), which is what a conflict costs: a reload and a retry.
func BenchmarkContention(b *testing.B) {
	for _, writers := range []int{1, 2, 4, 8, 16} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			reg := bankRegistry(b)
			store := es.NewStore(memory.NewBackend())
			ctx := context.Background()
			var attempts atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for w := 0; w < writers; w++ {
				n := b.N / writers
				if w < b.N%writers {
					n++
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					a, err := newAccount("hot", reg, store)
					if err != nil {
						b.Error(err)
						return
					}
					a.SetRetryPolicy(es.RetryPolicy{MaxAttempts: 10000, MinDelay: time.Microsecond, MaxDelay: time.Millisecond})
					for i := 0; i < n; i++ {
						err := a.Run(ctx, func(context.Context) ([]es.Event, error) {
							attempts.Add(1)
							return []es.Event{Deposited{Amount: 1}}, nil
						})
						if err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(attempts.Load())/float64(b.N), "attempts/cmd")
		})
	}
}
