package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/relay"
	"github.com/aggregatekit/eventsourcing/stores/pgstore"
)

// The relay runs from the store's feed with its checkpoint in PostgreSQL:
// commits made by racing writers reach the sink at least once and in
// stream order, through a sink that fails now and then, a relay stopped
// mid-way, and a second relay (another process) that resumes from the
// checkpoint the first saved.
func TestRelayFromFeed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := newPool(t, 12)
	schema := newSchema(t, pool)
	b := newBackend(t, pool, schema)

	var mu sync.Mutex
	delivered := map[string]int{}        // commit ID -> times
	next := map[backend.StreamID]int64{} // stream -> last sequence delivered
	var orderErrs []string
	sink := relay.SinkFunc(func(_ context.Context, commits []backend.Commit) error {
		if rand.IntN(10) == 0 {
			return errors.New("sink down")
		}
		mu.Lock()
		defer mu.Unlock()
		for _, c := range commits {
			if c.Expected > next[c.Stream] {
				orderErrs = append(orderErrs, fmt.Sprintf("%s: commit after %d delivered when only %d was", c.Stream, c.Expected, next[c.Stream]))
			}
			next[c.Stream] = max(next[c.Stream], c.Last())
			delivered[c.ID]++
		}
		return nil
	})
	opts := []relay.Option{relay.WithBatchSize(16), relay.WithBackoff(time.Millisecond, 20*time.Millisecond)}
	start := func(be backend.Backend) (*relay.Relay, context.CancelFunc, chan error) {
		src, err := relay.FromBackend(be, "to-sink")
		if err != nil {
			t.Fatal(err)
		}
		r, err := relay.New(src, sink, opts...)
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- r.Run(rctx) }()
		return r, cancel, done
	}

	const writers, commits = 8, 40
	var ids sync.Map
	var wg sync.WaitGroup
	phase2 := make(chan struct{}) // half the commits before, half after the first relay stops
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := backend.StreamID{AggregateType: "Relay", Key: fmt.Sprintf("s%d", w)}
			var head int64
			for i := 0; i < commits; i++ {
				id := fmt.Sprintf("relay-%d-%d", w, i)
				if err := b.Append(ctx, testCommit(s, head, 1+i%2, id)); err != nil {
					t.Error(err)
					return
				}
				head += int64(1 + i%2)
				ids.Store(id, true)
				if i == commits/2 {
					<-phase2
				}
			}
		}()
	}

	_, cancel1, done1 := start(b)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(delivered)
		mu.Unlock()
		if n >= writers*commits/4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first relay delivered %d commits in a minute", n)
		}
	}
	cancel1()
	if err := <-done1; err != nil {
		t.Fatalf("first relay: %v", err)
	}
	saved, err := b.LoadCheckpoint(ctx, "to-sink")
	if err != nil || saved == "" {
		t.Fatalf("the first relay left checkpoint %q (%v)", saved, err)
	}
	mu.Lock()
	firstRun := len(delivered)
	mu.Unlock()

	// Another process resumes from the checkpoint.
	other, err := pgstore.Open(ctx, postgresURL(t), pgstore.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	r2, cancel2, done2 := start(other)
	defer cancel2()
	close(phase2)
	wg.Wait()
	total := 0
	ids.Range(func(any, any) bool { total++; return true })
	deadline := time.Now().Add(time.Minute)
	for {
		mu.Lock()
		n := len(delivered)
		mu.Unlock()
		if n == total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a minute the sink has %d of %d commits; relay stats %+v", n, total, r2.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel2()
	if err := <-done2; err != nil {
		t.Fatalf("second relay: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, e := range orderErrs {
		t.Error(e)
	}
	again := 0
	for id, n := range delivered {
		if _, ok := ids.Load(id); !ok {
			t.Errorf("the sink got commit %s, which was never appended", id)
		}
		again += n - 1
	}
	final, _ := b.LoadCheckpoint(ctx, "to-sink")
	t.Logf("%d commits: %d delivered by the first relay, the rest by the second from checkpoint %s; %d redeliveries; final checkpoint %s",
		total, firstRun, saved, again, final)
	if final <= saved {
		t.Errorf("the checkpoint did not move: %q then %q", saved, final)
	}
}
