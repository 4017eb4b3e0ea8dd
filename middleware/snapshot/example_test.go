package snapshot_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/middleware/snapshot"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

// Counter is an aggregate whose state stays small however long its history.
type Counter struct {
	es.AggregateBase `json:"-"`
	Count            int64
	Last             string
}

// Increment is Counter's command; Incremented its event.
type Increment struct{ By string }

// Incremented records one increment.
type Incremented struct{ By string }

func (c *Counter) HandleIncrement(cmd Increment) ([]es.Event, error) {
	return []es.Event{Incremented(cmd)}, nil
}

func (c *Counter) ReplayIncremented(e Incremented) {
	c.Count++
	c.Last = e.By
}

func newCounter(key string, reg es.EventRegistry, store es.EventStore) (*Counter, error) {
	c := &Counter{}
	c.Initialize(key, reg, store, func() any { return c })
	return c, c.AutomaticWireup(c)
}

func Example() {
	ctx := context.Background()
	snapshots := memory.NewSnapshotStore()
	mw, err := snapshot.New(snapshots, snapshot.EveryN(100),
		snapshot.WithErrorHandler(func(ctx context.Context, err error) { log.Print(err) }))
	if err != nil {
		log.Fatal(err)
	}
	store := es.Wrap(es.NewStore(memory.NewBackend()), mw)
	reg := es.NewStandardEventRegistry("example")
	if err := reg.RegisterEvent(Incremented{}); err != nil {
		log.Fatal(err)
	}

	c, err := newCounter("visits", reg, store)
	if err != nil {
		log.Fatal(err)
	}
	for i := 0; i < 250; i++ {
		if err := c.Handle(ctx, Increment{By: fmt.Sprint("user", i)}); err != nil {
			log.Fatal(err)
		}
	}
	snap, err := snapshots.Get(ctx, c.StreamID())
	if err != nil {
		log.Fatal(err)
	}
	state, _, err := snapshot.Unseal(snap)
	if err != nil {
		panic(err)
	}
	fmt.Printf("snapshot at %d: %s\n", snap.Sequence, state)

	// A fresh instance restores the snapshot, then replays events 201 to 250.
	fresh, err := newCounter("visits", reg, store)
	if err != nil {
		log.Fatal(err)
	}
	if err := fresh.Refresh(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println(fresh.Count, fresh.Last, fresh.SequenceNumber())
	// Output:
	// snapshot at 200: {"Count":200,"Last":"user199"}
	// 250 user249 250
}

// Account keeps its state in unexported fields. It includes them in its
// snapshots by implementing json.Marshaler and json.Unmarshaler (the default
// codec sees exported fields only), and declares schema version 2 because
// version 1 stored the balance in another shape: snapshots written by version
// 1 are then ignored rather than misread.
type Account struct {
	es.AggregateBase `json:"-"`
	balance          int64
	owner            string
}

// SnapshotVersion implements snapshot.Versioned.
func (a *Account) SnapshotVersion() int { return 2 }

type accountSnapshot struct {
	Balance int64  `json:"balance"`
	Owner   string `json:"owner"`
}

// MarshalJSON encodes the unexported state for snapshots.
func (a *Account) MarshalJSON() ([]byte, error) {
	return json.Marshal(accountSnapshot{Balance: a.balance, Owner: a.owner})
}

// UnmarshalJSON restores the unexported state from a snapshot.
func (a *Account) UnmarshalJSON(data []byte) error {
	var s accountSnapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	a.balance, a.owner = s.Balance, s.Owner
	return nil
}

// Opened and Credited are Account's events.
type (
	Opened   struct{ Owner string }
	Credited struct{ Amount int64 }
)

func (a *Account) ReplayOpened(e Opened)     { a.owner = e.Owner }
func (a *Account) ReplayCredited(e Credited) { a.balance += e.Amount }

func ExampleVersioned() {
	ctx := context.Background()
	snapshots := memory.NewSnapshotStore()
	mw, err := snapshot.New(snapshots, snapshot.EveryN(2))
	if err != nil {
		log.Fatal(err)
	}
	store := es.Wrap(es.NewStore(memory.NewBackend()), mw)
	reg := es.NewStandardEventRegistry("bank")
	if err := reg.RegisterEvent(Opened{}, Credited{}); err != nil {
		log.Fatal(err)
	}
	a := &Account{}
	a.Initialize("acc-1", reg, store, func() any { return a })
	if err := a.AutomaticWireup(a); err != nil {
		log.Fatal(err)
	}
	if err := a.Run(ctx, func(context.Context) ([]es.Event, error) {
		return []es.Event{Opened{Owner: "ada"}, Credited{Amount: 1<<53 + 1}}, nil
	}); err != nil {
		log.Fatal(err)
	}
	snap, err := snapshots.Get(ctx, a.StreamID())
	if err != nil {
		log.Fatal(err)
	}
	state, _, err := snapshot.Unseal(snap)
	if err != nil {
		panic(err)
	}
	fmt.Printf("v%d at %d: %s\n", snap.Version, snap.Sequence, state)
	// Output:
	// v2 at 2: {"balance":9007199254740993,"owner":"ada"}
}
