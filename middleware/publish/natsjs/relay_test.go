package natsjs_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aggregatekit/eventsourcing/internal/outboxtest"

	natsgo "github.com/nats-io/nats.go"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/internal/testkit"
	"github.com/aggregatekit/eventsourcing/middleware/publish"
	"github.com/aggregatekit/eventsourcing/middleware/publish/natsjs"
	"github.com/aggregatekit/eventsourcing/relay"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

// A source-independent view of the store under test.
type source struct {
	name    string
	backend backend.Backend
	feed    backend.Feed // every commit, for the final check
	outbox  *outboxtest.Backend
}

func sources() []func() source {
	return []func() source{
		func() source { b := memory.NewBackend(); return source{"feed", b, b, nil} },
		func() source { o := outboxtest.New(); return source{"outbox", o, o.Memory, o} },
	}
}

// pending fails unless nothing is left to publish: the outbox is empty, or
// the checkpoint is at the end of the feed.
func (s source) checkNothingPending(t *testing.T, checkpoint string) {
	t.Helper()
	if s.outbox != nil {
		if n := s.outbox.Left(); n != 0 {
			t.Fatalf("%d commits left pending in the outbox", n)
		}
		return
	}
	b := s.backend.(*memory.Backend)
	saved, err := b.LoadCheckpoint(ctx, checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	for fc := range b.ReadFeed(ctx, saved) {
		t.Fatalf("the checkpoint %q is before commit %s %d-%d", saved, fc.Stream.String(), fc.First(), fc.Last())
	}
}

// Relays publish every commit exactly once, in stream order, while racing
// writers commit and the after-commit middleware publishes through the
// same Publisher; with the smallest duplicate window, so that the window
// plays no part.
func TestRelayWithMiddleware(t *testing.T) {
	for _, mk := range sources() {
		src := mk()
		t.Run(src.name, func(t *testing.T) {
			t.Parallel()
			js := connect(t)
			st, root := newStream(t, js, 100*time.Millisecond)
			p := publisher(t, js, st, root)
			mw, err := publish.New(p)
			if err != nil {
				t.Fatal(err)
			}
			store := es.Wrap(es.NewStore(src.backend), mw)
			source, err := relay.FromBackend(src.backend, "nats")
			if err != nil {
				t.Fatal(err)
			}
			r, err := relay.New(source, p, append(fast, relay.WithBatchSize(7))...)
			if err != nil {
				t.Fatal(err)
			}
			writers(t, store, []string{"a", "b"}, 2, 10, nil) // before the relay runs
			stop := run(t, r)
			writers(t, store, []string{"a", "b", "c"}, 4, 15, nil)
			waitFor(t, "the relay", 30*time.Second, func() bool { return src.drained("nats") })
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			checkExactlyOnce(t, st, root, stored(t, src.feed))
			src.checkNothingPending(t, "nats")
			t.Logf("relay %+v; publisher %+v", r.Stats(), p.Stats())
		})
	}
}

// drained reports whether nothing is left to publish: the outbox is empty,
// or each named checkpoint is at the end of the feed. (Stats.CaughtUp alone
// may be stale: it tells what the relay's latest read found.)
func (s source) drained(names ...string) bool {
	if s.outbox != nil {
		return s.outbox.Left() == 0
	}
	b := s.backend.(*memory.Backend)
	var end backend.Position
	for fc, err := range b.ReadFeed(ctx, "") {
		if err != nil {
			return false
		}
		end = fc.Position
	}
	for _, name := range names {
		if saved, err := b.LoadCheckpoint(ctx, name); err != nil || saved != end {
			return false
		}
	}
	return true
}

// Three relays at once (three application instances: each its own
// connection and Publisher) publish each commit once.
func TestThreeRelays(t *testing.T) {
	for _, mk := range sources() {
		for _, names := range []string{"shared", "separate"} {
			src := mk()
			t.Run(src.name+"/"+names+"-checkpoints", func(t *testing.T) {
				t.Parallel()
				js := connect(t)
				st, root := newStream(t, js, 100*time.Millisecond)
				store := es.NewStore(src.backend)
				var rs []*relay.Relay
				for i := range 3 {
					name := "nats"
					if names == "separate" {
						name = fmt.Sprintf("nats-%d", i) // each relay publishes everything
					}
					js := connect(t)
					source, _ := relay.FromBackend(src.backend, name)
					r, err := relay.New(source, publisher(t, js, st, root), append(fast, relay.WithBatchSize(5))...)
					if err != nil {
						t.Fatal(err)
					}
					run(t, r)
					rs = append(rs, r)
				}
				writers(t, store, []string{"a", "b", "c"}, 4, 15, nil)
				waitFor(t, "the relays", 30*time.Second, func() bool {
					if names == "shared" {
						return src.drained("nats")
					}
					return src.drained("nats-0", "nats-1", "nats-2")
				})
				all := stored(t, src.feed)
				checkExactlyOnce(t, st, root, all)
				var sum int64
				for _, r := range rs {
					sum += r.Stats().Commits
					if names == "separate" && src.outbox == nil {
						waitFor(t, "each relay", 30*time.Second, func() bool { return r.Stats().Commits == int64(len(all)) })
					}
				}
				if sum < int64(len(all)) {
					t.Fatalf("the relays confirmed %d commits in all, %d are stored", sum, len(all))
				}
				switch {
				case src.outbox != nil:
					src.checkNothingPending(t, "")
				case names == "shared":
					src.checkNothingPending(t, "nats")
				default:
					for i := range 3 {
						src.checkNothingPending(t, fmt.Sprintf("nats-%d", i))
					}
				}
			})
		}
	}
}

// Two stores whose streams have the same identities and sequences publish
// to one JetStream stream, each under its own prefix: neither's commits are
// taken for the other's (their message IDs, the commit IDs, differ).
func TestTwoStoresOneServer(t *testing.T) {
	t.Parallel()
	js := connect(t)
	st, root := newStream(t, js, time.Minute)
	type one struct {
		b      *memory.Backend
		prefix string
		r      *relay.Relay
	}
	var stores []*one
	for _, name := range []string{"shop", "billing"} {
		o := &one{b: memory.NewBackend(), prefix: root + "." + name}
		p := publisher(t, js, st, o.prefix)
		mw, _ := publish.New(p)
		store := es.Wrap(es.NewStore(o.b), mw)
		o.r, _ = relay.New(relay.FromFeed(o.b, o.b, "nats"), p, fast...)
		run(t, o.r)
		writers(t, store, []string{"a", "b"}, 2, 10, nil) // same keys, same sequences in both stores
		stores = append(stores, o)
	}
	for _, o := range stores {
		waitFor(t, "the relay", 30*time.Second, func() bool { return source{backend: o.b}.drained("nats") })
		checkExactlyOnce(t, st, o.prefix, stored(t, o.b))
	}
}

// A relay killed mid-batch (its context cancelled while the sink publishes,
// or a sink that published but lost the acknowledgements) is restarted
// with a new Publisher (nothing cached) after the duplicate window has
// passed: nothing is lost and nothing is stored twice.
func TestRelayKilledMidBatch(t *testing.T) {
	for _, mk := range sources() {
		for _, how := range []string{"cancelled", "lost-acks"} {
			src := mk()
			t.Run(src.name+"/"+how, func(t *testing.T) {
				t.Parallel()
				js := connect(t)
				st, root := newStream(t, js, 100*time.Millisecond)
				p := publisher(t, js, st, root)
				store := es.NewStore(src.backend)
				writers(t, store, []string{"a", "b", "c"}, 3, 10, nil)
				rctx, cancel := context.WithCancel(ctx)
				defer cancel()
				calls := 0
				dying := relay.SinkFunc(func(ctx context.Context, commits []backend.Commit) error {
					calls++
					if calls < 3 {
						return p.PublishCommits(ctx, commits)
					}
					// The third batch: half of it reaches JetStream, then the
					// relay dies (or never learns it did).
					if err := p.PublishCommits(ctx, commits[:len(commits)/2]); err != nil {
						return err
					}
					if how == "cancelled" {
						cancel()
						<-ctx.Done()
						return ctx.Err()
					}
					cancel()
					return errors.New("connection lost before the acknowledgements")
				})
				source, _ := relay.FromBackend(src.backend, "nats")
				r, _ := relay.New(source, dying, append(fast, relay.WithBatchSize(6))...)
				if err := r.Run(rctx); err != nil {
					t.Fatal(err)
				}
				if n := len(held(t, st, root)); n != 15 {
					t.Fatalf("JetStream holds %d commits after the kill, want 2 batches of 6 and half of the third", n)
				}
				time.Sleep(300 * time.Millisecond) // past the duplicate window
				fresh := publisher(t, connect(t), st, root)
				r2, _ := relay.New(source, fresh, fast...)
				run(t, r2)
				waitFor(t, "the new relay", 30*time.Second, func() bool { return src.drained("nats") })
				checkExactlyOnce(t, st, root, stored(t, src.feed))
				src.checkNothingPending(t, "nats")
				if s := fresh.Stats(); s.AlreadyHeld != 3 {
					t.Errorf("the new relay found %d commits already in JetStream, want the 3 the dead one published unconfirmed", s.AlreadyHeld)
				}
			})
		}
	}
}

// TestFaultNATSOutage stops NATS for longer than the JetStream stream's
// duplicate window while commits keep arriving (published by the
// after-commit middleware until NATS goes, and by relays, three of them),
// then restarts it: JetStream holds every stored commit exactly once, in
// stream order, and nothing is left pending.
func TestFaultNATSOutage(t *testing.T) {
	testkit.RequireFaults(t)
	const window = 2 * time.Second
	reconnect := []natsgo.Option{natsgo.MaxReconnects(-1), natsgo.ReconnectWait(50 * time.Millisecond), natsgo.ReconnectBufSize(-1)}
	for _, mk := range sources() {
		src := mk()
		t.Run(src.name, func(t *testing.T) {
			js := connect(t, reconnect...)
			st, root := newStream(t, js, window)
			p := publisher(t, js, st, root, natsjs.WithTimeout(time.Second))
			mw, _ := publish.New(p)
			store := es.Wrap(es.NewStore(src.backend), mw)
			var rs []*relay.Relay
			for range 3 {
				source, _ := relay.FromBackend(src.backend, "nats")
				r, _ := relay.New(source, publisher(t, connect(t, reconnect...), st, root, natsjs.WithTimeout(time.Second)),
					append(fast, relay.WithBatchSize(10), relay.WithTimeout(2*time.Second), relay.WithBackoff(20*time.Millisecond, 300*time.Millisecond))...)
				run(t, r)
				rs = append(rs, r)
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var commands int
			wg.Go(func() { commands = writers(t, store, []string{"a", "b", "c", "d"}, 4, 1<<30, stop) })
			time.Sleep(300 * time.Millisecond)
			testkit.Server("nats").Kill(t)
			killed := time.Now()
			time.Sleep(window + time.Second) // longer than the duplicate window, commits still arriving
			testkit.Server("nats").Restart(t)
			t.Logf("NATS down for %v", time.Since(killed).Round(time.Millisecond))
			time.Sleep(500 * time.Millisecond)
			close(stop)
			wg.Wait()
			waitFor(t, "the relays to catch up", 60*time.Second, func() bool { return src.drained("nats") })
			all := stored(t, src.feed)
			t.Logf("%d commands, %d commits stored; relay 0: %+v", commands, len(all), rs[0].Stats())
			var failures int
			for _, r := range rs {
				failures += int(r.Stats().Failures)
			}
			if failures == 0 {
				t.Fatal("no relay noticed the outage")
			}
			checkExactlyOnce(t, st, root, all)
			src.checkNothingPending(t, "nats")
		})
	}
}
