package pgstore_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/stores/pgstore"
)

// The events of a counter.
type Incremented struct{ By int }

type Increment struct{ By int }

// Counter is an aggregate.
type Counter struct {
	es.AggregateBase `json:"-"`
	Value            int
}

func (c *Counter) HandleIncrement(cmd Increment) ([]es.Event, error) {
	return []es.Event{Incremented(cmd)}, nil
}

func (c *Counter) ReplayIncremented(e Incremented) { c.Value += e.By }

// An event store on PostgreSQL: Open connects from a URL (and owns the pool),
// creates the schema if it is missing, and es.NewStore makes the store the
// aggregates use. The feed then yields every commit, in an order that never
// skips one. (It needs a server, so go test compiles it but does not run
// it; TestExample runs it against the test server.)
func Example() {
	url := os.Getenv("DATABASE_URL") // e.g. postgres://app@db.example/app
	ctx := context.Background()
	schema := fmt.Sprintf("example_%d", time.Now().UnixNano())
	b, err := pgstore.Open(ctx, url, pgstore.WithSchema(schema))
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _, _ = b.Pool().Exec(ctx, `DROP SCHEMA "`+schema+`" CASCADE`) }() // the example cleans up
	store := es.NewStore(b)
	defer store.Close()

	registry := es.NewStandardEventRegistry("counters")
	if err := registry.RegisterEvent(Incremented{}); err != nil {
		log.Fatal(err)
	}
	counter := &Counter{}
	counter.Initialize("visits", registry, store, func() any { return counter })
	if err := counter.AutomaticWireup(counter); err != nil {
		log.Fatal(err)
	}
	for _, by := range []int{1, 2, 3} {
		if err := counter.Handle(ctx, Increment{By: by}); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("value:", counter.Value)

	// Every commit of every stream, after a position (here the start).
	var feed backend.Feed = b
	for c, err := range feed.ReadFeed(ctx, "") {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: events %d to %d\n", c.Stream, c.First(), c.Last())
	}
	// value: 6
	// Counter/visits: events 1 to 1
	// Counter/visits: events 2 to 2
	// Counter/visits: events 3 to 3
}

// TestExample runs Example against the test server and checks what it
// prints.
func TestExample(t *testing.T) {
	t.Setenv("DATABASE_URL", postgresURL(t))
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	defer func() { os.Stdout = stdout }()
	Example()
	os.Stdout = stdout
	_ = w.Close()
	out, _ := io.ReadAll(r)
	want := "value: 6\nCounter/visits: events 1 to 1\nCounter/visits: events 2 to 2\nCounter/visits: events 3 to 3\n"
	if string(out) != want {
		t.Fatalf("Example printed\n%s\nwant\n%s", out, want)
	}
}
