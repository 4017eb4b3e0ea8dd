//go:build unix

package eventsourcing_test

import (
	"context"
	"strconv"
	"testing"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/internal/cputime"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

// withCPU runs the benchmark loop body and reports the process CPU time
// per op (cpu-ns/op) beside the wall time.
func withCPU(b *testing.B, body func(i int)) {
	b.ReportAllocs()
	t0 := cputime.Process()
	i := 0
	for b.Loop() {
		body(i)
		i++
	}
	b.ReportMetric(float64((cputime.Process()-t0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// BenchmarkRepository compares the Repository with the code it replaces:
// "new" builds one instance (Repository.New against calling the factory),
// "handle" runs one command on an account with a short history (each key
// takes 32 commands; Repository.Handle against the factory followed by
// AggregateBase.Handle). The paired variants alternate the two in one loop
// and report the median ratio.
func BenchmarkRepository(b *testing.B) {
	ctx := context.Background()
	reg := bankRegistry(b)
	// paths returns the four bodies over a new, empty store.
	paths := func() (newByRepo, newByHand, handleByRepo, handleByHand func(int)) {
		store := es.NewStore(memory.NewBackend())
		repo := es.NewRepository(reg, store, newAccount)
		key := func(prefix string, i int) string { return prefix + strconv.Itoa(i/32) }
		newByRepo = func(int) {
			if _, err := repo.New(ctx, "k"); err != nil {
				b.Fatal(err)
			}
		}
		newByHand = func(int) {
			if _, err := newAccount("k", reg, store); err != nil {
				b.Fatal(err)
			}
		}
		handleByRepo = func(i int) {
			if _, err := repo.Handle(ctx, key("r", i), Deposit{Amount: 1}); err != nil {
				b.Fatal(err)
			}
		}
		handleByHand = func(i int) {
			a, err := newAccount(key("h", i), reg, store)
			if err != nil {
				b.Fatal(err)
			}
			if err := a.Handle(ctx, Deposit{Amount: 1}); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.Run("new/repository", func(b *testing.B) { f, _, _, _ := paths(); withCPU(b, f) })
	b.Run("new/factory", func(b *testing.B) { _, f, _, _ := paths(); withCPU(b, f) })
	b.Run("new/paired", func(b *testing.B) { f, g, _, _ := paths(); pairedRatioN(b, f, g, "repository/factory") })
	b.Run("handle/repository", func(b *testing.B) { _, _, f, _ := paths(); withCPU(b, f) })
	b.Run("handle/by-hand", func(b *testing.B) { _, _, _, f := paths(); withCPU(b, f) })
	b.Run("handle/paired", func(b *testing.B) { _, _, f, g := paths(); pairedRatioN(b, f, g, "repository/by-hand") })
}

// pairedRatioN is pairedRatio for bodies that take the iteration number.
func pairedRatioN(b *testing.B, f, base func(int), unit string) {
	i := 0
	pairedRatio(b, func(*testing.B) { f(i) }, func(*testing.B) { base(i); i++ }, unit)
}
