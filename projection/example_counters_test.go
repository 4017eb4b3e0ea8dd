package projection_test

import (
	"context"
	"fmt"
	"slices"
	"sync"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/projection"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

// CounterView is one counter as a list of counters shows it.
type CounterView struct {
	Name     string `json:"name"`
	Count    int64  `json:"count"`
	Sequence int64  `json:"sequence"`
}

// CounterList is the read model behind a paged list of all counters,
// kept in memory (and so rebuilt when the process starts).
type CounterList struct {
	mu    sync.RWMutex
	views map[string]CounterView
	names []string // sorted
}

// NewCounterList returns an empty list.
func NewCounterList() *CounterList { return &CounterList{views: map[string]CounterView{}} }

// ProjectIncremented applies an Incremented event.
func (l *CounterList) ProjectIncremented(ev projection.Event, e Incremented) {
	l.mu.Lock()
	defer l.mu.Unlock()
	name := ev.Stream.Key
	v, ok := l.views[name]
	if !ok {
		i, _ := slices.BinarySearch(l.names, name)
		l.names = slices.Insert(l.names, i, name)
	}
	l.views[name] = CounterView{Name: name, Count: v.Count + e.By, Sequence: ev.Sequence}
}

// Page returns up to limit counters whose names sort after after, in
// name order: GET /counters?after=<name>&limit=<n>.
func (l *CounterList) Page(after string, limit int) []CounterView {
	l.mu.RLock()
	defer l.mu.RUnlock()
	i, found := slices.BinarySearch(l.names, after)
	if found {
		i++
	}
	out := []CounterView{}
	for ; i < len(l.names) && len(out) < limit; i++ {
		out = append(out, l.views[l.names[i]])
	}
	return out
}

// A list of all counters, paged, served from a projection that is rebuilt
// when the server starts and then follows the store.
func ExampleRunner_Start() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reg := es.NewStandardEventRegistry("counter")
	if err := reg.RegisterEvent(Incremented{}); err != nil {
		panic(err)
	}
	store := es.NewStore(memory.NewBackend()) // or the SQLite or PostgreSQL store
	for i, name := range []string{"b", "a", "d", "c", "a"} {
		increment(ctx, reg, store, name, int64(i+1))
	}

	// At start-up, before serving:
	list := NewCounterList()
	p, err := projection.New("counter-list", reg, list, projection.WithAggregateTypes("Counter"))
	if err != nil {
		panic(err)
	}
	src, err := projection.FromStore(store) // ErrNoFeed on MongoDB and DynamoDB: use natsjs.NewSource
	if err != nil {
		panic(err)
	}
	r, err := projection.NewRunner(p, src, projection.NewMemoryStore())
	if err != nil {
		panic(err)
	}
	if err := r.Start(ctx); err != nil { // rebuilt, then followed until ctx ends
		panic(err)
	}

	// GET /counters?limit=2, then GET /counters?after=b&limit=2
	fmt.Println(list.Page("", 2))
	fmt.Println(list.Page("b", 2))

	// At shutdown:
	cancel()
	r.Wait()
	// Output:
	// [{a 7 2} {b 1 1}]
	// [{c 4 1} {d 3 1}]
}
