package natsjs_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/internal/cputime"
	"github.com/aggregatekit/eventsourcing/middleware/publish/natsjs"
	"github.com/aggregatekit/eventsourcing/relay"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

// fill appends n commits of 2 events each, round robin over streams, to b.
func fill(b testing.TB, m *memory.Backend, n, streams int) {
	b.Helper()
	heads := make([]int64, streams)
	for i := range n {
		s := i % streams
		stream := backend.StreamID{AggregateType: "Bench", Key: fmt.Sprintf("k%d", s)}
		id := fmt.Sprintf("bench-%d-%d", s, heads[s])
		c := backend.Commit{Stream: stream, Expected: heads[s], ID: id}
		for j := range 2 {
			c.Records = append(c.Records, backend.Record{Stream: stream, Sequence: heads[s] + 1 + int64(j), EventType: "Added",
				Data: []byte(`{"ID":"x-0","Batch":"x","Index":0,"Size":2}`), Timestamp: time.Now(), CommitID: id})
		}
		if err := m.Append(ctx, c); err != nil {
			b.Fatal(err)
		}
		heads[s] += 2
	}
}

// BenchmarkRelayThroughput relays b.N stored commits (2 events each, over
// 16 streams) from the memory feed to JetStream, against a raw baseline
// that publishes the same messages, read from the same feed, with
// pipelined jetstream.PublishMsgAsync calls and their message IDs, but
// without the per-subject guard (one batch of 100 in flight at a time).
// It reports commits/s and the client's CPU time per commit.
func BenchmarkRelayThroughput(b *testing.B) {
	js := connect(b)
	for _, mode := range []string{"baseline", "relay"} {
		b.Run(mode, func(b *testing.B) {
			st, root := newStream(b, js, time.Minute)
			m := memory.NewBackend()
			fill(b, m, b.N, 16)
			p := publisher(b, js, st, root)
			cpu0 := cputime.Process()
			b.ResetTimer()
			start := time.Now()
			switch mode {
			case "relay":
				r, err := relay.New(relay.FromFeed(m, m, "bench"), p, relay.WithPollInterval(time.Millisecond))
				if err != nil {
					b.Fatal(err)
				}
				stop := run(b, r)
				for r.Stats().Commits < int64(b.N) {
					time.Sleep(100 * time.Microsecond)
				}
				b.StopTimer()
				_ = stop()
			case "baseline":
				baseline(b, js, root, m)
				b.StopTimer()
			}
			elapsed := time.Since(start)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "commits/s")
			b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// baseline publishes the feed's commits as the relay does, but with plain
// pipelined publications: what JetStream costs without the guard.
func baseline(b *testing.B, js jetstream.JetStream, prefix string, m *memory.Backend) {
	// The Publisher builds the messages (the same bytes and headers, message
	// ID included) into a capturing JetStream.
	cap := &capture{}
	q, err := natsjs.New(cap, "S", natsjs.WithSubjectPrefix(prefix), natsjs.AllowGaps())
	if err != nil {
		b.Fatal(err)
	}
	var batch []backend.Commit
	flush := func() {
		futures := make([]jetstream.PubAckFuture, 0, len(batch))
		for _, c := range batch {
			if err := q.Publish(ctx, messagesOf([]backend.Commit{c})); err != nil {
				b.Fatal(err)
			}
			msg := cap.msg
			msg.Header.Del(jetstream.ExpectedStreamHeader) // the capture's stream name
			f, err := js.PublishMsgAsync(msg)
			if err != nil {
				b.Fatal(err)
			}
			futures = append(futures, f)
		}
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				b.Fatal(err)
			}
		}
		batch = batch[:0]
	}
	for fc, err := range m.ReadFeed(ctx, "") {
		if err != nil {
			b.Fatal(err)
		}
		batch = append(batch, fc.Commit)
		if len(batch) == 100 {
			flush()
		}
	}
	flush()
}

// capture is a JetStream that records the message instead of sending it.
type capture struct {
	jetstream.JetStream
	msg *natsgo.Msg
}

func (c *capture) Conn() *natsgo.Conn { return nil }
func (c *capture) PublishMsg(_ context.Context, m *natsgo.Msg, _ ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	c.msg = m
	return &jetstream.PubAck{Stream: "S"}, nil
}

// BenchmarkEndToEndLatency commits one commit of 2 events every
// millisecond to the memory store while a relay runs, and reports the
// time from the commit to JetStream's acknowledgement of its message (p50,
// p99, max), measured from the commit's timestamp to the return of the
// sink call that published it.
func BenchmarkEndToEndLatency(b *testing.B) {
	js := connect(b)
	st, root := newStream(b, js, time.Minute)
	p := publisher(b, js, st, root)
	m := memory.NewBackend()
	var mu sync.Mutex
	var lat []time.Duration
	sink := relay.SinkFunc(func(ctx context.Context, commits []backend.Commit) error {
		err := p.PublishCommits(ctx, commits)
		now := time.Now()
		if err == nil {
			mu.Lock()
			for _, c := range commits {
				lat = append(lat, now.Sub(c.Records[0].Timestamp))
			}
			mu.Unlock()
		}
		return err
	})
	r, err := relay.New(relay.FromFeed(m, m, "bench"), sink)
	if err != nil {
		b.Fatal(err)
	}
	stop := run(b, r)
	cpu0 := cputime.Process()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	heads := map[int]int64{}
	b.ResetTimer()
	for i := range b.N {
		<-tick.C
		s := i % 16
		stream := backend.StreamID{AggregateType: "Bench", Key: fmt.Sprintf("k%d", s)}
		id := fmt.Sprintf("lat-%d-%d", s, heads[s])
		c := backend.Commit{Stream: stream, Expected: heads[s], ID: id}
		for j := range 2 {
			c.Records = append(c.Records, backend.Record{Stream: stream, Sequence: heads[s] + 1 + int64(j), EventType: "Added",
				Data: []byte(`{"ID":"x-0"}`), Timestamp: time.Now(), CommitID: id})
		}
		if err := m.Append(ctx, c); err != nil {
			b.Fatal(err)
		}
		heads[s] += 2
	}
	for r.Stats().Commits < int64(b.N) {
		time.Sleep(100 * time.Microsecond)
	}
	b.StopTimer()
	_ = stop()
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	q := func(f float64) float64 { return float64(lat[min(len(lat)-1, int(f*float64(len(lat))))].Microseconds()) }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
	b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N), "cpu-ns/op")
}
