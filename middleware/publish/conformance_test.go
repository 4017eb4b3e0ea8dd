package publish_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/internal/probe"
	"github.com/aggregatekit/eventsourcing/middleware/publish"
	"github.com/aggregatekit/eventsourcing/stores/memory"
	"github.com/aggregatekit/eventsourcing/storetest"
)

// keepOpen ignores Close, so that a test can read the store after the suite
// closed it.
type keepOpen struct{ es.EventStore }

func (keepOpen) Close() error { return nil }

// streams records the streams committed to (successfully or not).
type streams struct {
	mu  sync.Mutex
	set map[es.StreamID]bool
}

func (s *streams) middleware(next es.EventStore) es.EventStore { return streamRecorder{next, s} }

func (s *streams) list() []es.StreamID {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []es.StreamID
	for id := range s.set {
		out = append(out, id)
	}
	return out
}

type streamRecorder struct {
	es.EventStore
	s *streams
}

func (r streamRecorder) Commit(ctx context.Context, c es.Commit) error {
	r.s.mu.Lock()
	if r.s.set == nil {
		r.s.set = map[es.StreamID]bool{}
	}
	r.s.set[c.Stream] = true
	r.s.mu.Unlock()
	return r.EventStore.Commit(ctx, c)
}

// verifiedStore returns publish(memory store) with an in-process Bus, and
// checks when t ends that the published events are exactly the stored ones:
// same count, same order per stream, no duplicates, and no failure reported.
func verifiedStore(t *testing.T, handlers ...publish.Handler) es.EventStore {
	backend := memory.NewBackend()
	inner := es.NewStore(backend)
	bus := publish.NewBus()
	var got sink
	bus.SubscribeAll(got.handle)
	for _, h := range handlers {
		bus.SubscribeAll(h)
	}
	var f failures
	var touched streams
	mw, err := publish.New(bus, f.handler())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer backend.Close()
		published := recordsOf(got.all())
		seen := map[es.StreamID]bool{}
		for _, id := range touched.list() {
			seen[id] = true
			checkSame(t, id, published, load(t, inner, id))
		}
		for _, r := range published {
			if !seen[r.Stream] {
				t.Fatalf("published an event of %s, never committed to", r.Stream)
			}
		}
		if errs := f.all(); len(errs) > 0 {
			t.Fatalf("publication failures: %v", errs)
		}
	})
	return es.Wrap(keepOpen{inner}, mw, touched.middleware)
}

func TestConformance(t *testing.T) {
	storetest.RunEventStore(t, func(t *testing.T) es.EventStore { return verifiedStore(t) })
}

// Many goroutines commit to a few streams while a handler yields, so that
// commits finish and publications interleave in every order: each stream's
// events must still be published in stream order.
func TestRacingWritersPublishInStreamOrder(t *testing.T) {
	store := verifiedStore(t, func(context.Context, publish.Message) error {
		runtime.Gosched()
		return nil
	})
	const keys, writers, commands = 3, 12, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*commands)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := probe.New(fmt.Sprintf("key-%d", w%keys), "", probe.NewRegistry(), store)
			if err != nil {
				errs <- err
				return
			}
			p.SetRetryPolicy(es.RetryPolicy{MaxAttempts: 10000, MinDelay: time.Microsecond, MaxDelay: 100 * time.Microsecond})
			for i := 0; i < commands; i++ {
				if err := p.Handle(ctx, probe.Add{Batch: fmt.Sprintf("w%d-%d", w, i), Size: 1 + i%3}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
