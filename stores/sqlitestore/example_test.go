package sqlitestore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/middleware/snapshot"
	"github.com/aggregatekit/eventsourcing/stores/sqlitestore"
)

// Counter is a small aggregate for the examples.
type Counter struct {
	es.AggregateBase `json:"-"`
	Count            int
}

// Increment is Counter's command; Incremented its event.
type (
	Increment   struct{ By int }
	Incremented struct{ By int }
)

func (c *Counter) HandleIncrement(cmd Increment) ([]es.Event, error) {
	if cmd.By < 1 {
		return nil, errors.New("increment must be positive")
	}
	return []es.Event{Incremented(cmd)}, nil
}

func (c *Counter) ReplayIncremented(e Incremented) { c.Count += e.By }

func newCounter(key string, reg es.EventRegistry, store es.EventStore) *Counter {
	c := &Counter{}
	c.Initialize(key, reg, store, func() any { return c })
	if err := c.AutomaticWireup(c); err != nil {
		log.Fatal(err)
	}
	return c
}

// openStore opens the database file with snapshots in the same file, every
// 100 events.
func openStore(ctx context.Context, path string) (es.EventStore, *sqlitestore.Backend) {
	b, err := sqlitestore.Open(ctx, path)
	if err != nil {
		log.Fatal(err)
	}
	snapshots, err := snapshot.New(sqlitestore.NewSnapshotStore(b), snapshot.EveryN(100))
	if err != nil {
		log.Fatal(err)
	}
	return es.Wrap(es.NewStore(b), snapshots), b
}

// Example keeps counters in a database file: they survive a restart.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "counters.db")

	reg := es.NewStandardEventRegistry("example")
	if err := reg.RegisterEvent(Incremented{}); err != nil {
		log.Fatal(err)
	}

	store, _ := openStore(ctx, path)
	visits := newCounter("visits", reg, store)
	for _, by := range []int{1, 2, 3} {
		if err := visits.Handle(ctx, Increment{By: by}); err != nil {
			log.Fatal(err)
		}
	}
	if err := store.Close(); err != nil { // closes the database
		log.Fatal(err)
	}

	// A new process would do the same: open the file, load the counter.
	store, backend := openStore(ctx, path)
	defer store.Close()
	again := newCounter("visits", reg, store)
	if err := again.Refresh(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("count after a restart:", again.Count)

	// The feed: every commit of every stream, in commit order.
	for c, err := range backend.ReadFeed(ctx, "") {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s %s events %d to %d\n", c.Position, c.Stream, c.First(), c.Last())
	}
	// Output:
	// count after a restart: 6
	// 00000000000000000001 Counter/visits events 1 to 1
	// 00000000000000000002 Counter/visits events 2 to 2
	// 00000000000000000003 Counter/visits events 3 to 3
}

// ExampleNewBackend builds the store on a *sql.DB the application owns and
// configures: the data source name sets each connection's busy timeout
// (other processes may write to the file) and synchronous level. Closing
// the Backend leaves the handle open.
func ExampleNewBackend() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "app.db")+"?_pragma=busy_timeout(5000)&_pragma=synchronous(NORMAL)")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	b, err := sqlitestore.NewBackend(ctx, db)
	if err != nil {
		log.Fatal(err)
	}
	store := es.NewStore(b)
	defer store.Close() // closes the Backend, not db

	// The application's own tables may live in the same file.
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS visitors (name TEXT PRIMARY KEY)`); err != nil {
		log.Fatal(err)
	}
	var tables int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table'`).Scan(&tables); err != nil {
		log.Fatal(err)
	}
	fmt.Println("tables:", tables)
	// Output:
	// tables: 5
}
