package integration_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/internal/cputime"
	"github.com/aggregatekit/eventsourcing/middleware/publish/natsjs"
	"github.com/aggregatekit/eventsourcing/relay"
)

// appendOne appends a one-event commit to stream after head.
func appendOne(ctx context.Context, b es.Backend, stream es.StreamID, head int64) error {
	id := es.NewCommitID()
	return b.Append(ctx, backend.Commit{Stream: stream, Expected: head, ID: id, Records: []backend.Record{{
		Stream: stream, Sequence: head + 1, EventType: "Added", Data: []byte(`{"ID":"x"}`), Timestamp: time.Now(), CommitID: id,
	}}})
}

// BenchmarkRelay measures, for each store, the relay's throughput (commits
// already stored, relayed into JetStream: commits/s and the relay process's
// CPU per commit, servers excluded) and the latency from a commit's Append
// returning to the JetStream consumer receiving it, at about 200 commits/s
// (p50, p99).
func BenchmarkRelay(b *testing.B) {
	for _, db := range relayed {
		b.Run(db.name, func(b *testing.B) {
			var rates, cpus []float64
			var lat []time.Duration
			for b.Loop() {
				rate, cpu, l := relayRound(b, db.open(b), 1000)
				rates, cpus, lat = append(rates, rate), append(cpus, cpu), append(lat, l...)
			}
			slices.Sort(rates)
			slices.Sort(cpus)
			slices.Sort(lat)
			b.ReportMetric(rates[len(rates)/2], "commits/s")
			b.ReportMetric(cpus[len(cpus)/2], "relay-cpu-us/commit")
			if len(lat) > 0 {
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			}
		})
	}
}

// relayRound runs one measurement on a fresh store and stream.
func relayRound(b *testing.B, store es.EventStore, commits int) (perSec, cpuPerCommit float64, lat []time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	be := es.BackendOf(store)
	js, s, root := jetStream(b)
	pub, err := natsjs.New(js, "IT_"+root, natsjs.WithSubjectPrefix(root))
	if err != nil {
		b.Fatal(err)
	}
	base := fmt.Sprintf("%s-%d", unique("rb"), time.Now().UnixNano())
	heads := make([]int64, 16)
	for i := range commits {
		w := i % 16
		if err := appendOne(ctx, be, es.StreamID{AggregateType: "Probe", Key: fmt.Sprintf("%s-%d", base, w)}, heads[w]); err != nil {
			b.Fatal(err)
		}
		heads[w]++
	}
	src, err := relay.FromBackend(be, "bench")
	if err != nil {
		b.Fatal(err)
	}
	r, err := relay.New(src, pub, relay.WithPollInterval(5*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	c0, t0 := cputime.Process(), time.Now()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = r.Run(ctx) }()
	for r.Stats().Commits < int64(commits) {
		time.Sleep(time.Millisecond)
	}
	elapsed, cpu := time.Since(t0), cputime.Process()-c0
	perSec, cpuPerCommit = float64(commits)/elapsed.Seconds(), float64(cpu.Microseconds())/float64(commits)

	// Latency: a consumer notes when each commit arrives.
	arrived := map[string]time.Time{}
	var mu sync.Mutex
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		b.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		mu.Lock()
		arrived[m.Headers().Get("Nats-Msg-Id")] = time.Now()
		mu.Unlock()
	})
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Stop()
	sent := map[string]time.Time{}
	stream := es.StreamID{AggregateType: "Probe", Key: base + "-lat"}
	for i := range 200 {
		id := es.NewCommitID()
		err := be.Append(ctx, backend.Commit{Stream: stream, Expected: int64(i), ID: id, Records: []backend.Record{{
			Stream: stream, Sequence: int64(i) + 1, EventType: "Added", Data: []byte(`{}`), Timestamp: time.Now(), CommitID: id}}})
		if err != nil {
			b.Fatal(err)
		}
		sent[id] = time.Now()
		time.Sleep(5 * time.Millisecond)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(arrived)
		mu.Unlock()
		if n >= len(sent) {
			break
		}
	}
	mu.Lock()
	for id, at := range sent {
		if got, ok := arrived[id]; ok {
			lat = append(lat, got.Sub(at))
		}
	}
	mu.Unlock()
	cancel()
	wg.Wait()
	return perSec, cpuPerCommit, lat
}
