//go:build unix

package eventsourcing_test

import (
	"context"
	"strconv"
	"testing"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

// BenchmarkUpcastLoad loads a wallet of 1000 events stored in the current
// schema, and one of 1000 events stored as version 1 under an old name
// (two steps each: a rename, then UpcastJSON), into the same aggregate.
// The ratio is the cost of upcasting on load; events of the current schema
// pay nothing for the registry's upcasters (the check runs only for a name
// the registry does not know).
func BenchmarkUpcastLoad(b *testing.B) {
	const n = 1000
	ctx := context.Background()
	reg := walletRegistry(b)
	fill := func(typ string, data func(i int) string) *memory.Backend {
		back := memory.NewBackend()
		stream := es.StreamID{AggregateType: "Wallet", Key: "w"}
		recs := make([]es.Record, n)
		for i := range recs {
			recs[i] = es.Record{Stream: stream, Sequence: int64(i + 1), EventType: typ, Data: []byte(data(i)), CommitID: "c"}
		}
		if err := back.Append(ctx, backend.Commit{Stream: stream, ID: "c", Records: recs}); err != nil {
			b.Fatal(err)
		}
		return back
	}
	current := es.NewStore(fill("Credited@v2", func(i int) string { return `{"Cents":` + strconv.Itoa(i*100) + `,"Currency":"EUR"}` }))
	old := es.NewStore(fill("MoneyIn", func(i int) string { return `{"Amount":` + strconv.Itoa(i) + `}` }))
	load := func(store es.EventStore) func(int) {
		return func(int) {
			w, err := newWallet("w", reg, store)
			if err != nil {
				b.Fatal(err)
			}
			if err := w.Refresh(ctx); err != nil || w.Cents != 100*n*(n-1)/2 {
				b.Fatalf("%v: %d cents", err, w.Cents)
			}
		}
	}
	b.Run("current", func(b *testing.B) { withCPU(b, load(current)) })
	b.Run("version1", func(b *testing.B) { withCPU(b, load(old)) })
	b.Run("paired", func(b *testing.B) { pairedRatioN(b, load(old), load(current), "version1/current") })
}
