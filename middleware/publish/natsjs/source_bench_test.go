package natsjs_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/internal/cputime"
	"github.com/aggregatekit/eventsourcing/internal/latencybench"
	"github.com/aggregatekit/eventsourcing/internal/probe"
	"github.com/aggregatekit/eventsourcing/middleware/publish/natsjs"
	"github.com/aggregatekit/eventsourcing/projection"
	"github.com/aggregatekit/eventsourcing/projection/projectiontest"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

// BenchmarkSourceThroughput projects b.N/2 commits of 2 events (over 16
// streams), held in a JetStream stream, into an in-memory read model
// through the Source, against a baseline that fetches the same messages
// from a durable consumer in batches of 256, decodes them (DecodeCommit
// and the events' JSON), applies them and acknowledges each batch. It
// reports events/s and the client's CPU time per event.
func BenchmarkSourceThroughput(b *testing.B) {
	js := connect(b)
	for _, mode := range []string{"baseline", "runner"} {
		b.Run(mode, func(b *testing.B) {
			st, root := newStream(b, js, time.Minute)
			m := memory.NewBackend()
			fill(b, m, (b.N+1)/2, 16)
			p := publisher(b, js, st, root)
			commits := stored(b, m)
			for i := 0; i < len(commits); i += 500 {
				if err := p.PublishCommits(ctx, commits[i:min(i+500, len(commits))]); err != nil {
					b.Fatal(err)
				}
			}
			model := projectiontest.NewMemoryModel()
			cpu0 := cputime.Process()
			b.ResetTimer()
			start := time.Now()
			switch mode {
			case "baseline":
				baselineConsume(b, st, root, 2*len(commits), model)
			case "runner":
				src, err := natsjs.NewSource(js, streamName(st), natsjs.WithSourcePrefix(root))
				if err != nil {
					b.Fatal(err)
				}
				proj, err := model.Open(probe.NewRegistry())
				if err != nil {
					b.Fatal(err)
				}
				r, err := projection.NewRunner(proj, src, projection.NewMemoryStore())
				if err != nil {
					b.Fatal(err)
				}
				if err := r.CatchUp(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			elapsed := time.Since(start)
			got, _ := model.Applied(ctx)
			n := 0
			for _, ids := range got {
				n += len(ids)
			}
			if n != 2*len(commits) {
				b.Fatalf("applied %d of %d events", n, 2*len(commits))
			}
			b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
			b.ReportMetric(float64(cputime.Process()-cpu0)/float64(n), "cpu-ns/event")
		})
	}
}

// baselineConsume reads n events through a durable consumer by hand.
func baselineConsume(b *testing.B, st jetstream.Stream, root string, n int, model *projectiontest.MemoryModel) {
	cons, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "baseline", FilterSubject: root + ".>",
		AckPolicy: jetstream.AckAllPolicy, MaxAckPending: 20000})
	if err != nil {
		b.Fatal(err)
	}
	for got := 0; got < n; {
		batch, err := cons.FetchNoWait(projection.DefaultBatchSize)
		if err != nil {
			b.Fatal(err)
		}
		var last jetstream.Msg
		for msg := range batch.Messages() {
			c, err := natsjs.DecodeCommit(msg.Headers(), msg.Data())
			if err != nil {
				b.Fatal(err)
			}
			for _, rec := range c.Records {
				var e probe.Added
				if err := json.Unmarshal(rec.Data, &e); err != nil {
					b.Fatal(err)
				}
				model.ProjectAdded(projection.Event{Stream: c.Stream, Sequence: rec.Sequence}, e)
				got++
			}
			last = msg
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, natsgo.ErrTimeout) {
			b.Fatal(err)
		}
		if last != nil {
			if err := last.DoubleAck(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkSourceLatency measures the time from a command's commit to the
// moment its event is in the read model, through the whole path: 4
// writers commit b.N commands of one event through aggregates on the
// memory store, each at most one every 2 ms; a relay publishes them to
// JetStream; a runner reads them through the Source into an in-memory
// read model. It reports p50 and p99 in microseconds and the client's CPU
// time per command (writers, relay and runner; not the NATS server's).
func BenchmarkSourceLatency(b *testing.B) {
	js := connect(b)
	st, root := newStream(b, js, time.Minute)
	m := memory.NewBackend()
	runRelay(b, m, publisher(b, js, st, root))
	src, err := natsjs.NewSource(js, streamName(st), natsjs.WithSourcePrefix(root))
	if err != nil {
		b.Fatal(err)
	}
	reg := probe.NewRegistry()
	var lat latencybench.Recorder
	p, err := projection.New("latency", reg, &noting{note: lat.Applied})
	if err != nil {
		b.Fatal(err)
	}
	r, err := projection.NewRunner(p, src, projection.NewMemoryStore(),
		projection.WithHooks(projection.Hooks{Batch: func(projection.Batch) { lat.Committed() }}))
	if err != nil {
		b.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	store := es.NewStore(m)
	cpu0 := cputime.Process()
	b.ResetTimer()
	latencybench.WriteCommands(b, ctx, reg, store, 4, b.N, 2*time.Millisecond)
	lat.Wait(b, b.N)
	cancel()
	<-done
	lat.Report(b, cpu0)
}

// noting is a read model that notes each event's commit time.
type noting struct{ note func(time.Time) }

// ProjectAdded notes the event.
func (n *noting) ProjectAdded(ev projection.Event, e probe.Added) { n.note(ev.Time) }
