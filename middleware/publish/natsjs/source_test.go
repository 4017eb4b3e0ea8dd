package natsjs_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/internal/probe"
	"github.com/aggregatekit/eventsourcing/middleware/publish/natsjs"
	"github.com/aggregatekit/eventsourcing/projection"
	"github.com/aggregatekit/eventsourcing/projection/projectiontest"
	"github.com/aggregatekit/eventsourcing/relay"
)

// runRelay runs a relay from b to p until the test ends.
func runRelay(t testing.TB, b backend.Backend, p *natsjs.Publisher) {
	t.Helper()
	src, err := relay.FromBackend(b, "nats")
	if err != nil {
		t.Fatal(err)
	}
	r, err := relay.New(src, p, append(fast, relay.WithBatchSize(50))...)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = r.Run(rctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// Kill and restart a projector mid-stream while 16 writers commit: the
// commits go from the store to JetStream through a relay (from a Feed, and
// from an Outbox as MongoDB and DynamoDB have), and the projection reads
// them through its durable consumer.
func TestSourceKillRestart(t *testing.T) {
	for _, mk := range sources() {
		src := mk()
		t.Run(src.name, func(t *testing.T) {
			js := connect(t)
			st, root := newStream(t, js, time.Minute)
			runRelay(t, src.backend, publisher(t, js, st, root))
			source, err := natsjs.NewSource(js, streamName(st), natsjs.WithSourcePrefix(root), natsjs.WithAckWait(5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			res := projectiontest.RunKillRestart(t, projectiontest.KillConfig{
				Store:    es.NewStore(src.backend),
				Source:   source,
				Progress: projection.NewMemoryStore(),
				Options:  []projection.RunnerOption{projection.WithBatchSize(16), projection.WithBackoff(time.Millisecond, 20*time.Millisecond)},
			})
			if res.Events == 0 {
				t.Fatal("no events")
			}
		})
	}
}

// The durable consumer follows the checkpoint: reopened at the position it
// acknowledged, it goes on; reopened at an earlier one, it delivers again
// from there.
func TestSourceFollowsTheCheckpoint(t *testing.T) {
	js := connect(t)
	st, root := newStream(t, js, time.Minute)
	p := publisher(t, js, st, root)
	s := backend.StreamID{AggregateType: "Probe", Key: "cp"}
	var commits []backend.Commit
	for i := 0; i < 6; i++ {
		c := backend.Commit{Stream: s, Expected: int64(i), ID: es.NewCommitID(),
			Records: []backend.Record{{Stream: s, Sequence: int64(i + 1), EventType: "Added", Data: []byte(`{}`), Timestamp: time.Now().UTC()}}}
		c.Records[0].CommitID = c.ID
		commits = append(commits, c)
	}
	if err := p.PublishCommits(ctx, commits); err != nil {
		t.Fatal(err)
	}
	source, err := natsjs.NewSource(js, streamName(st), natsjs.WithSourcePrefix(root))
	if err != nil {
		t.Fatal(err)
	}
	id := projection.ID{Name: "follow", Version: "1"}
	read := func(sub projection.Subscription, n int) []backend.FeedCommit {
		t.Helper()
		got, err := sub.Read(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	sub, err := source.Open(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	got := read(sub, 4)
	if len(got) != 4 || got[0].ID != commits[0].ID || got[3].ID != commits[3].ID {
		t.Fatalf("read %d commits", len(got))
	}
	if pending, ok := sub.(projection.Pender).Pending(); !ok || pending != 2 {
		t.Fatalf("pending %d %v, want 2", pending, ok)
	}
	if err := sub.Ack(ctx, got[2].Position); err != nil {
		t.Fatal(err)
	}
	sub.Close()
	info, err := st.Consumer(ctx, natsjs.DurableName(id))
	if err != nil {
		t.Fatal(err)
	}
	created := info.CachedInfo().Created

	// At the acknowledged position: the consumer was ahead (commit 4 was
	// delivered, not acknowledged), so it is reset to deliver commit 4 again.
	sub, err = source.Open(ctx, id, got[2].Position)
	if err != nil {
		t.Fatal(err)
	}
	again := read(sub, 10)
	if len(again) != 3 || again[0].ID != commits[3].ID {
		t.Fatalf("after the checkpoint: %d commits, first %v", len(again), again)
	}
	if err := sub.Ack(ctx, again[2].Position); err != nil {
		t.Fatal(err)
	}
	sub.Close()
	info, _ = st.Consumer(ctx, natsjs.DurableName(id))
	recreated := info.CachedInfo().Created

	// In step with the checkpoint: the same consumer goes on.
	sub, err = source.Open(ctx, id, again[2].Position)
	if err != nil {
		t.Fatal(err)
	}
	if rest := read(sub, 10); len(rest) != 0 {
		t.Fatalf("%d commits after the end", len(rest))
	}
	sub.Close()
	info, _ = st.Consumer(ctx, natsjs.DurableName(id))
	if !info.CachedInfo().Created.Equal(recreated) || recreated.Equal(created) {
		t.Fatalf("consumer created at %v, then %v, then %v: want a reset, then a reuse", created, recreated, info.CachedInfo().Created)
	}

	// An earlier checkpoint: delivered again from there.
	sub, err = source.Open(ctx, id, got[0].Position)
	if err != nil {
		t.Fatal(err)
	}
	if from := read(sub, 10); len(from) != 5 || from[0].ID != commits[1].ID {
		t.Fatalf("from the first commit: %d commits", len(from))
	}
	sub.Close()

	if _, err := source.Open(ctx, id, "12"); !errors.Is(err, backend.ErrInvalidPosition) {
		t.Fatalf("a position of another source: %v", err)
	}
}

// A message that is not a commit stops the runner: it cannot be applied
// nor attributed to a stream.
func TestSourceMalformedMessageStopsTheRunner(t *testing.T) {
	js := connect(t)
	st, root := newStream(t, js, time.Minute)
	if _, err := js.PublishMsg(ctx, &natsgo.Msg{Subject: root + ".Probe.x", Data: []byte("not a commit")}); err != nil {
		t.Fatal(err)
	}
	source, err := natsjs.NewSource(js, streamName(st), natsjs.WithSourcePrefix(root))
	if err != nil {
		t.Fatal(err)
	}
	p, err := projection.New("malformed", probe.NewRegistry(), projectiontest.NewMemoryModel())
	if err != nil {
		t.Fatal(err)
	}
	r, err := projection.NewRunner(p, source, projection.NewMemoryStore())
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	err = r.Run(cctx)
	if !errors.Is(err, natsjs.ErrMalformed) || !errors.Is(err, es.ErrCorruptStream) {
		t.Fatalf("got %v, want ErrMalformed and ErrCorruptStream", err)
	}
}

// A delivery the subscription did not receive makes Read fail rather than
// let the runner acknowledge past it.
func TestSourceDetectsAMissedDelivery(t *testing.T) {
	js := connect(t)
	st, root := newStream(t, js, time.Minute)
	p := publisher(t, js, st, root)
	s := backend.StreamID{AggregateType: "Probe", Key: "missed"}
	for i := 0; i < 3; i++ {
		c := backend.Commit{Stream: s, Expected: int64(i), ID: es.NewCommitID(),
			Records: []backend.Record{{Stream: s, Sequence: int64(i + 1), EventType: "Added", Data: []byte(`{}`), Timestamp: time.Now().UTC()}}}
		c.Records[0].CommitID = c.ID
		if err := p.PublishCommits(ctx, []backend.Commit{c}); err != nil {
			t.Fatal(err)
		}
	}
	source, err := natsjs.NewSource(js, streamName(st), natsjs.WithSourcePrefix(root))
	if err != nil {
		t.Fatal(err)
	}
	id := projection.ID{Name: "missed", Version: "1"}
	sub, err := source.Open(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	// Another client of the same consumer takes the first message.
	cons, err := st.Consumer(ctx, natsjs.DurableName(id))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cons.Next(jetstream.FetchMaxWait(time.Second)); err != nil {
		t.Fatal(err)
	}
	if got, err := sub.Read(ctx, 10); err == nil {
		t.Fatalf("read %d commits after a delivery it did not receive", len(got))
	}
}
