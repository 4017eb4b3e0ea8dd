package projection_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/projection"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

// Incremented is the event of the examples' Counter aggregate.
type Incremented struct {
	By int64
}

// Counter is an aggregate: a named counter.
type Counter struct {
	es.AggregateBase `json:"-"`
	Count            int64
}

// Increment is the Counter's command.
type Increment struct{ By int64 }

func (c *Counter) HandleIncrement(cmd Increment) ([]es.Event, error) {
	return []es.Event{Incremented(cmd)}, nil
}

func (c *Counter) ReplayIncremented(e Incremented) { c.Count += e.By }

// increment raises the named counter by by.
func increment(ctx context.Context, reg es.EventRegistry, store es.EventStore, name string, by int64) {
	c := &Counter{}
	c.Initialize(name, reg, store, func() any { return c })
	if err := c.AutomaticWireup(c); err != nil {
		panic(err)
	}
	if err := c.Handle(ctx, Increment{By: by}); err != nil {
		panic(err)
	}
}

// Totals is a read model: the count of every counter, kept in memory.
type Totals struct {
	mu     sync.Mutex
	counts map[string]int64
}

// ProjectIncremented applies an Incremented event. Methods are called one
// at a time by the runner; the mutex is for the readers.
func (t *Totals) ProjectIncremented(ev projection.Event, e Incremented) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.counts[ev.Stream.Key] += e.By
}

// Names returns the counters' names, sorted.
func (t *Totals) Names() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var names []string
	for n := range t.counts {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// A read model of counter totals, kept current from the memory store's
// feed.
func Example() {
	ctx := context.Background()
	reg := es.NewStandardEventRegistry("counters")
	if err := reg.RegisterEvent(Incremented{}); err != nil {
		panic(err)
	}
	store := es.NewStore(memory.NewBackend())
	increment(ctx, reg, store, "visits", 2)
	increment(ctx, reg, store, "signups", 1)
	increment(ctx, reg, store, "visits", 3)

	totals := &Totals{counts: map[string]int64{}}
	p, err := projection.New("counter-totals", reg, totals)
	if err != nil {
		panic(err)
	}
	src, err := projection.FromStore(store)
	if err != nil {
		panic(err)
	}
	r, err := projection.NewRunner(p, src, projection.NewMemoryStore())
	if err != nil {
		panic(err)
	}
	// CatchUp applies what is stored; a server would `go r.Run(ctx)` to
	// follow the store from then on.
	if err := r.CatchUp(ctx); err != nil {
		panic(err)
	}
	for _, name := range totals.Names() {
		fmt.Println(name, totals.counts[name])
	}
	st := r.Status()
	fmt.Println("applied:", st.Applied, "caught up:", st.CaughtUp)
	// Output:
	// signups 1
	// visits 5
	// applied: 3 caught up: true
}

// Rebuild a projection beside the live one, then switch readers to it.
func ExampleRunner_Activate() {
	ctx := context.Background()
	reg := es.NewStandardEventRegistry("counters")
	if err := reg.RegisterEvent(Incremented{}); err != nil {
		panic(err)
	}
	b := memory.NewBackend()
	store := es.NewStore(b)
	for i := 0; i < 1000; i++ {
		increment(ctx, reg, store, fmt.Sprintf("c%d", i%10), 1)
	}
	progress := projection.NewMemoryStore()
	run := func(version string, model *Totals, opts ...projection.RunnerOption) *projection.Runner {
		p, err := projection.New("counter-totals", reg, model, projection.WithVersion(version))
		if err != nil {
			panic(err)
		}
		r, err := projection.NewRunner(p, projection.FromFeed(b), progress, opts...)
		if err != nil {
			panic(err)
		}
		if err := r.CatchUp(ctx); err != nil {
			panic(err)
		}
		return r
	}
	live := run("1", &Totals{counts: map[string]int64{}})
	if err := live.Activate(ctx); err != nil {
		panic(err)
	}

	// Version 2, built from the beginning, reporting its progress.
	next := &Totals{counts: map[string]int64{}}
	reports := 0
	r2 := run("2", next, projection.WithBatchSize(250), projection.WithHooks(projection.Hooks{
		Batch: func(b projection.Batch) { reports++ },
	}))
	if err := r2.Activate(ctx); err != nil {
		panic(err)
	}
	active, _ := progress.Active(ctx, "counter-totals")
	fmt.Println("progress reports:", reports, "applied:", r2.Status().Applied)
	fmt.Println("active version:", active, "c7:", next.counts["c7"])
	// Output:
	// progress reports: 4 applied: 1000
	// active version: 2 c7: 100
}

// Fussy refuses negative increments.
type Fussy struct{ sum int64 }

func (f *Fussy) ProjectIncremented(e Incremented) error {
	if e.By < 0 {
		return errors.New("negative increment")
	}
	f.sum += e.By
	return nil
}

// An event that keeps failing is parked, and can be replayed once the
// projection is fixed.
func ExamplePolicy() {
	ctx := context.Background()
	reg := es.NewStandardEventRegistry("counters")
	if err := reg.RegisterEvent(Incremented{}); err != nil {
		panic(err)
	}
	store := es.NewStore(memory.NewBackend())
	increment(ctx, reg, store, "a", 2)
	increment(ctx, reg, store, "a", -1)
	increment(ctx, reg, store, "a", 5)

	model := &Fussy{}
	p, err := projection.New("fussy", reg, model)
	if err != nil {
		panic(err)
	}
	src, _ := projection.FromStore(store)
	r, err := projection.NewRunner(p, src, projection.NewMemoryStore(),
		projection.WithPolicy(projection.Policy{Attempts: 2, Then: projection.Park}))
	if err != nil {
		panic(err)
	}
	if err := r.CatchUp(ctx); err != nil {
		panic(err)
	}
	fmt.Println("sum:", model.sum)
	for parked, err := range r.Parked(ctx) {
		if err != nil {
			panic(err)
		}
		fmt.Printf("parked: %s sequence %d after %d attempts: %s\n", parked.Stream, parked.Sequence, parked.Attempts, parked.Error)
		if err := r.Discard(ctx, parked.Stream, parked.Sequence); err != nil {
			panic(err)
		}
	}
	// Output:
	// sum: 7
	// parked: Counter/a sequence 2 after 2 attempts: negative increment
}

// CounterTable is a read model in an SQL database: its method writes
// through the runner's transaction, in which the runner also stores the
// checkpoint and the per-stream sequences, so a crash can never leave the
// table and the progress apart.
type CounterTable struct{}

// ProjectIncremented adds the increment to the counter's row.
func (*CounterTable) ProjectIncremented(ctx context.Context, tx *sql.Tx, ev projection.Event, e Incremented) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO counter_totals (name, count) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET count = counter_totals.count + excluded.count`, ev.Stream.Key, e.By)
	return err
}

// A projection into an SQLite database (any database/sql driver; the
// example opens nothing, so it does not run).
func ExampleNewSQLStore() {
	ctx := context.Background()
	var db *sql.DB // sql.Open("sqlite", "file:app.db?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	var reg es.EventRegistry
	var store es.EventStore

	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS counter_totals (name TEXT PRIMARY KEY, count INTEGER NOT NULL)`); err != nil {
		panic(err)
	}
	progress, err := projection.NewSQLStore(ctx, db, projection.SQLite)
	if err != nil {
		panic(err)
	}
	p, err := projection.New("counter-totals", reg, &CounterTable{})
	if err != nil {
		panic(err)
	}
	src, err := projection.FromStore(store)
	if err != nil {
		panic(err)
	}
	r, err := projection.NewRunner(p, src, progress)
	if err != nil {
		panic(err)
	}
	go r.Run(ctx) // follows the store until ctx ends
}
