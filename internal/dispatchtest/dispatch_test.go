package dispatchtest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/backend"
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

// otherCodec is JSONCodec under another type: loads through it decode a new
// value and dispatch it, instead of the generated ApplyJSONEvent.
type otherCodec struct{ es.JSONCodec }

// The generated ApplyJSONEvent (with a pointer Replay method and a value
// one) loads what the codec path loads, for records in the plain form and
// for records its DecodeJSON hands to encoding/json.
func TestGeneratedApplyJSONEvent(t *testing.T) {
	ctx := context.Background()
	mem := memory.NewBackend()
	store := es.NewStore(mem)
	stream := es.StreamID{AggregateType: "Account", Key: "k"}
	records := []struct{ typ, data string }{
		{"Deposited", `{"Amount":100,"Reference":"plain"}`},
		{"Withdrawn", `{"Amount":7,"Reference":"<&>"}`},
		{"Deposited", ` { "amount" : 20 , "Reference" : "caf\u00e9" } `}, // other case, spaces, escapes
		{"Withdrawn", `{"Reference":"x","Amount":1,"Amount":2}`},         // a repeated key: the last wins
		{"Deposited", `{"Amount":3,"Unknown":{"nested":[1,2]}}`},
	}
	for i, r := range records {
		id := es.NewCommitID()
		rec := es.Record{Stream: stream, Sequence: int64(i) + 1, EventType: r.typ, Data: []byte(r.data), Timestamp: time.Now(), CommitID: id}
		if err := mem.Append(ctx, backend.Commit{Stream: stream, Expected: int64(i), ID: id, Records: []es.Record{rec}}); err != nil {
			t.Fatal(err)
		}
	}
	var balances []int64
	for _, reg := range []*es.StandardEventRegistry{dispatchtest.Registry(), es.NewStandardEventRegistry("other", es.WithCodec(otherCodec{}))} {
		if err := reg.RegisterEvent(dispatchtest.Deposited{}, dispatchtest.Withdrawn{}); err != nil {
			t.Fatal(err)
		}
		a, err := dispatchtest.New("k", reg, store)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if a.SequenceNumber() != int64(len(records)) {
			t.Fatalf("sequence %d, want %d", a.SequenceNumber(), len(records))
		}
		balances = append(balances, a.Balance)
	}
	if want := int64(100 - 7 + 20 - 2 + 3); balances[0] != want || balances[1] != want {
		t.Fatalf("balance %d through ApplyJSONEvent and %d through the codec, want %d", balances[0], balances[1], want)
	}
}
