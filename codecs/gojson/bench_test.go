package gojson_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/codecs/gojson"
	"github.com/aggregatekit/eventsourcing/internal/cputime"
	"github.com/aggregatekit/eventsourcing/internal/dispatchtest"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

func registry(b *testing.B, c es.Codec) *es.StandardEventRegistry {
	r := es.NewStandardEventRegistry("bench", es.WithCodec(c))
	if err := r.RegisterEvent(dispatchtest.Deposited{}, dispatchtest.Withdrawn{}); err != nil {
		b.Fatal(err)
	}
	return r
}

// paired runs each codec's op in turn in every iteration and reports the
// median of gojson's time over encoding/json's, and each one's CPU time.
func paired(b *testing.B, op func(b *testing.B, c es.Codec)) {
	codecs := []es.Codec{es.JSONCodec{}, gojson.Codec{}}
	var ratios []float64
	var cpu [2]time.Duration
	for b.Loop() {
		var wall [2]time.Duration
		for i, c := range codecs {
			c0, t0 := cputime.Process(), time.Now()
			op(b, c)
			wall[i], cpu[i] = time.Since(t0), cpu[i]+cputime.Process()-c0
		}
		ratios = append(ratios, float64(wall[1])/float64(wall[0]))
	}
	slices.Sort(ratios)
	b.ReportMetric(ratios[len(ratios)/2], "gojson/encoding-json")
	b.ReportMetric(float64(cpu[0].Nanoseconds())/float64(b.N), "encoding-json-cpu-ns/op")
	b.ReportMetric(float64(cpu[1].Nanoseconds())/float64(b.N), "gojson-cpu-ns/op")
}

// BenchmarkRebuild loads 10,000 events into a fresh aggregate.
func BenchmarkRebuild(b *testing.B) {
	ctx := context.Background()
	stores := map[es.Codec]es.EventStore{}
	for _, c := range []es.Codec{es.JSONCodec{}, gojson.Codec{}} {
		store := es.NewStore(memory.NewBackend())
		a, _ := dispatchtest.New("k", registry(b, c), store)
		for i := 0; i < 100; i++ {
			if err := a.Run(ctx, func(context.Context) ([]es.Event, error) {
				events := make([]es.Event, 100)
				for j := range events {
					events[j] = dispatchtest.Deposited{Amount: int64(j), Reference: fmt.Sprint("ref-", i)}
				}
				return events, nil
			}); err != nil {
				b.Fatal(err)
			}
		}
		stores[c] = store
	}
	regs := map[es.Codec]*es.StandardEventRegistry{}
	paired(b, func(b *testing.B, c es.Codec) {
		if regs[c] == nil {
			regs[c] = registry(b, c)
		}
		a, _ := dispatchtest.New("k", regs[c], stores[c])
		if err := a.Refresh(ctx); err != nil || a.SequenceNumber() != 10000 {
			b.Fatal(err)
		}
	})
}

// BenchmarkCommand runs one command on a kept instance.
func BenchmarkCommand(b *testing.B) {
	ctx := context.Background()
	accounts := map[es.Codec]*dispatchtest.Account{}
	for _, c := range []es.Codec{es.JSONCodec{}, gojson.Codec{}} {
		accounts[c], _ = dispatchtest.New("k", registry(b, c), es.NewStore(memory.NewBackend()))
	}
	paired(b, func(b *testing.B, c es.Codec) {
		if err := accounts[c].Handle(ctx, dispatchtest.Deposit{Amount: 1, Reference: "ref"}); err != nil {
			b.Fatal(err)
		}
	})
}
