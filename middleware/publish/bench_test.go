package publish_test

import (
	"context"
	"strconv"
	"testing"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/internal/probe"
	"github.com/aggregatekit/eventsourcing/middleware/publish"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

// BenchmarkCommit compares a command on the bare memory store (baseline)
// with the same command through the publish middleware and a Bus with one
// handler.
func BenchmarkCommit(b *testing.B) {
	run := func(b *testing.B, store es.EventStore) {
		cmd := probe.Add{Batch: "b", Size: 1}
		var p *probe.Probe
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if i%1000 == 0 { // a new stream now and then, to keep streams short
				p = newProbe(b, store, "bench-"+strconv.Itoa(i))
			}
			i++
			if err := p.Handle(ctx, cmd); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("baseline", func(b *testing.B) {
		s := es.NewStore(memory.NewBackend())
		defer s.Close()
		run(b, s)
	})
	b.Run("publish", func(b *testing.B) {
		bus := publish.NewBus()
		n := 0
		bus.SubscribeAll(func(context.Context, publish.Message) error { n++; return nil })
		run(b, newStore(b, bus))
		if n == 0 {
			b.Fatal("nothing published")
		}
	})
}
