package main

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"testing"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/aggregatetest"
	"github.com/aggregatekit/eventsourcing/stores/memory"
	"github.com/gin-gonic/gin"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}

// fastRetry keeps tests that provoke conflicts on purpose quick.
var fastRetry = es.RetryPolicy{MaxAttempts: 3, MinDelay: 1}

func newTestCounters(t *testing.T, store es.EventStore, max int64, retry es.RetryPolicy) *Counters {
	t.Helper()
	c, err := NewCounters(store, max, retry, 100)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCounterDomain(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	counters := newTestCounters(t, es.NewStore(memory.NewBackend()), 10, es.DefaultRetryPolicy())

	if _, err := counters.Get(ctx, "c"); !errors.Is(err, ErrCounterNotFound) {
		t.Fatalf("Get of a new counter: %v, want ErrCounterNotFound", err)
	}
	v, err := counters.Increment(ctx, "c", 4)
	if err != nil || v != (CounterView{Name: "c", Count: 4, Sequence: 1}) {
		t.Fatalf("Increment by 4 = %+v, %v", v, err)
	}
	if v, err = counters.Increment(ctx, "c", 6); err != nil || v.Count != 10 || v.Sequence != 2 {
		t.Fatalf("Increment to the maximum = %+v, %v", v, err)
	}
	if _, err := counters.Increment(ctx, "c", 1); !errors.Is(err, ErrMaxExceeded) {
		t.Fatalf("Increment past the maximum: %v, want ErrMaxExceeded", err)
	}
	for _, by := range []int64{0, -1, -1 << 63} {
		if _, err := counters.Increment(ctx, "c", by); !errors.Is(err, ErrInvalidIncrement) {
			t.Fatalf("Increment by %d: %v, want ErrInvalidIncrement", by, err)
		}
	}
	if v, err := counters.Get(ctx, "c"); err != nil || v != (CounterView{Name: "c", Count: 10, Sequence: 2}) {
		t.Fatalf("Get = %+v, %v; refused commands must store nothing", v, err)
	}
	// A huge increment must not overflow past the check.
	if _, err := counters.Increment(ctx, "big", 1<<62); !errors.Is(err, ErrMaxExceeded) {
		t.Fatalf("Increment by 2^62: %v, want ErrMaxExceeded", err)
	}
}

func TestNewCountersRejectsBadArguments(t *testing.T) {
	t.Parallel()
	if _, err := NewCounters(nil, 1, es.RetryPolicy{}, 0); err == nil {
		t.Error("NewCounters(nil store) succeeded")
	}
	if _, err := NewCounters(es.NewStore(memory.NewBackend()), 0, es.RetryPolicy{}, 0); err == nil {
		t.Error("NewCounters(max 0) succeeded")
	}
}

// conflictOnce makes the first commit of a counter lose to a rival writer
// that increments the same counter in between, so Handle must reload and
// retry. The maximum, unexported configuration, must survive.
type conflictOnce struct {
	es.EventStore
	rival  *Counters
	fired  atomic.Bool
	rivals int64 // how much the rival adds
}

func (s *conflictOnce) Commit(ctx context.Context, c es.Commit) error {
	if !s.fired.Swap(true) {
		if _, err := s.rival.Increment(ctx, c.Stream.Key, s.rivals); err != nil {
			return err
		}
	}
	return s.EventStore.Commit(ctx, c)
}

func TestRetryKeepsMaximum(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	inner := es.NewStore(memory.NewBackend())
	store := &conflictOnce{EventStore: inner, rival: newTestCounters(t, inner, 10, fastRetry), rivals: 2}
	counters := newTestCounters(t, store, 10, fastRetry)

	// The first attempt decides on count 0; the rival makes it 2; the retry
	// decides again on 2 and may add 5 only if the maximum survived the
	// reset before the reload (a zeroed maximum refuses everything).
	if v, err := counters.Increment(ctx, "c", 5); err != nil || v != (CounterView{Name: "c", Count: 7, Sequence: 2}) {
		t.Fatalf("Increment after a conflict = %+v, %v; want count 7 at sequence 2", v, err)
	}
	if v, err := counters.Increment(ctx, "c", 3); err != nil || v.Count != 10 {
		t.Fatalf("Increment to the maximum = %+v, %v", v, err)
	}
	if _, err := counters.Increment(ctx, "c", 1); !errors.Is(err, ErrMaxExceeded) {
		t.Fatalf("Increment past the maximum: %v, want ErrMaxExceeded", err)
	}
}

// The Counter's decisions as given-when-then scenarios, through the same
// encoding a store uses.
func TestCounterScenarios(t *testing.T) {
	t.Parallel()
	registry, err := NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	newCounter := NewCounter(10, exampleRetryPolicy())
	aggregatetest.New(t, registry, newCounter).
		Given(Incremented{By: 4}).
		When(Increment{By: 6}).
		Then(Incremented{By: 6}).
		ThenState(func(t testing.TB, c *Counter) {
			if c.Count != 10 {
				t.Errorf("count %d, want 10", c.Count)
			}
		})
	aggregatetest.New(t, registry, newCounter).Given(Incremented{By: 10}).When(Increment{By: 1}).ThenError(ErrMaxExceeded)
	aggregatetest.New(t, registry, newCounter).When(Increment{By: 0}).ThenError(ErrInvalidIncrement)
	aggregatetest.New(t, registry, newCounter).When(Increment{By: 1}).Then(Incremented{By: 1})
}
