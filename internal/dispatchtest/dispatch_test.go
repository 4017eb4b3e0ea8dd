package dispatchtest_test

import (
	"context"
	"errors"
	"testing"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/internal/dispatchtest"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

// conflictOnce fails the first commit with a conflict.
type conflictOnce struct {
	es.EventStore
	failed bool
}

func (o *conflictOnce) Commit(ctx context.Context, c es.Commit) error {
	if !o.failed {
		o.failed = true
		return es.ErrConcurrency
	}
	return o.EventStore.Commit(ctx, c)
}

// The generated dispatch behaves as the reflective path: values and
// pointers, contexts, handler errors, a fresh command per retry, reloads.
func TestGeneratedDispatch(t *testing.T) {
	ctx := context.Background()
	reg := dispatchtest.Registry()
	store := es.NewStore(memory.NewBackend())
	a, err := dispatchtest.New("k", reg, store)
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []any{dispatchtest.Deposit{Amount: 10}, &dispatchtest.Deposit{Amount: 5}, dispatchtest.Withdraw{Amount: 3}, &dispatchtest.Withdraw{Amount: 2}} {
		if err := a.Handle(ctx, cmd); err != nil {
			t.Fatalf("%T: %v", cmd, err)
		}
	}
	if err := a.Handle(ctx, dispatchtest.Withdraw{Amount: 100}); !errors.Is(err, dispatchtest.ErrInsufficientFunds) {
		t.Fatalf("got %v", err)
	}
	if err := a.Handle(ctx, struct{}{}); !errors.Is(err, es.ErrNoHandler) {
		t.Fatalf("unknown command: %v", err)
	}
	if a.Balance != 10 || a.SequenceNumber() != 4 {
		t.Fatalf("balance %d at %d", a.Balance, a.SequenceNumber())
	}
	b, _ := dispatchtest.New("k", reg, store)
	if err := b.Refresh(ctx); err != nil || b.Balance != 10 {
		t.Fatalf("reload: %v, balance %d", err, b.Balance)
	}
	// A retry gets a fresh copy of a command passed by value.
	c, _ := dispatchtest.New("bump", reg, &conflictOnce{EventStore: store})
	if err := c.Handle(ctx, dispatchtest.Bump{N: 0}); err != nil {
		t.Fatal(err)
	}
	if c.Balance != 1 {
		t.Fatalf("balance %d after a retried bump, want 1: the retry saw the failed attempt's change", c.Balance)
	}
}
