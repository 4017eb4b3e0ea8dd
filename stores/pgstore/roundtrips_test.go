package pgstore_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/internal/probe"
	"github.com/aggregatekit/eventsourcing/stores/pgstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// queryCounter is a pgx tracer counting the statements a pool runs (each
// is one round trip once prepared; preparing costs one more, once per
// statement and connection).
type queryCounter struct {
	mu  sync.Mutex
	sql []string
}

func (c *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	words := strings.Fields(d.SQL)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sql = append(c.sql, strings.Join(words[:min(len(words), 3)], " "))
	return ctx
}

func (c *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// take returns the statements counted since the last call.
func (c *queryCounter) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.sql
	c.sql = nil
	return out
}

// The round trips the package documentation promises.
func TestRoundTrips(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(postgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	counter := &queryCounter{}
	cfg.ConnConfig.Tracer = counter
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	schema := newSchema(t, pool)
	b := newBackend(t, pool, schema, pgstore.WithPageSize(100), pgstore.WithoutNotify()) // notifications: see TestNotifyCoalesced
	store := es.NewStore(b)
	reg := probe.NewRegistry()
	counter.take()

	check := func(what string, want int) {
		t.Helper()
		if got := counter.take(); len(got) != want {
			t.Errorf("%s: %d statements %q, want %d", what, len(got), got, want)
		}
	}
	// checkFeed is check for feed reads, which poll the snapshot xmin
	// while a transaction anywhere in the cluster is in flight (as other
	// tests' are): those polls are the wait, not the read.
	checkFeed := func(what string, want int) {
		t.Helper()
		var got []string
		for _, q := range counter.take() {
			if q != "SELECT pg_snapshot_xmin(pg_current_snapshot())" {
				got = append(got, q)
			}
		}
		if len(got) != want {
			t.Errorf("%s: %d statements %q besides waits, want %d", what, len(got), got, want)
		}
	}
	p, err := probe.New("rt", "", reg, store)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Handle(ctx, probe.Add{Batch: "a", Size: 3}); err != nil {
		t.Fatal(err)
	}
	check("Handle on a new aggregate (load, append)", 2)
	if err := p.Handle(ctx, probe.Add{Batch: "b", Size: 1}); err != nil {
		t.Fatal(err)
	}
	check("Handle on a loaded aggregate (load of nothing new, append)", 2)
	q, _ := probe.New("rt", "", reg, store)
	if err := q.Handle(ctx, probe.Add{Batch: "c", Size: 1}); err != nil {
		t.Fatal(err)
	}
	check("Handle on an aggregate with history (load, append)", 2)

	s := backend.StreamID{AggregateType: "Probe", Key: "pages"}
	for i := 0; i < 250; i += 50 {
		if err := b.Append(ctx, testCommit(s, int64(i), 50, s.Key+string(rune('a'+i/50)))); err != nil {
			t.Fatal(err)
		}
	}
	counter.take()
	if n := len(loadAll(t, b, s)); n != 250 {
		t.Fatalf("loaded %d", n)
	}
	check("Load of 250 events with pages of 100", 3)
	if n := len(loadAll(t, b, backend.StreamID{AggregateType: "Probe", Key: "hundred"})); n != 0 {
		t.Fatal(n)
	}
	check("Load of an empty stream", 1)

	var last backend.Position
	for c, err := range b.ReadFeed(ctx, "") {
		if err != nil {
			t.Fatal(err)
		}
		last = c.Position
	}
	checkFeed("ReadFeed of 255 events in 8 commits, pages of 100 rows (bound, 3 pages)", 4)
	for _, err := range b.ReadFeed(ctx, last) {
		t.Fatal(err)
	}
	checkFeed("ReadFeed with nothing new", 1)
	if err := b.SaveCheckpoint(ctx, "rt", last); err != nil {
		t.Fatal(err)
	}
	if _, err := b.LoadCheckpoint(ctx, "rt"); err != nil {
		t.Fatal(err)
	}
	check("SaveCheckpoint and LoadCheckpoint", 2)

	snaps, err := pgstore.NewSnapshotStore(ctx, pool, pgstore.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	check("NewSnapshotStore on an existing schema", 1)
	if err := snaps.Put(ctx, backend.Snapshot{Stream: s, Sequence: 5, State: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	if _, err := snaps.Get(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := snaps.Delete(ctx, s); err != nil {
		t.Fatal(err)
	}
	check("SnapshotStore Put, Get, Delete", 3)
}

// The NOTIFY that wakes other processes' readers is sent after the commits,
// by one goroutine, at most once per 5ms however many appends there are.
func TestNotifyCoalesced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(postgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	counter := &queryCounter{}
	cfg.ConnConfig.Tracer = counter
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	schema := newSchema(t, pool)
	b := newBackend(t, pool, schema)
	const writers, each = 16, 10
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := backend.StreamID{AggregateType: "Probe", Key: fmt.Sprintf("n%d", w)}
			for i := 0; i < each; i++ {
				if err := b.Append(ctx, testCommit(s, int64(i), 1, fmt.Sprintf("n%d-%d", w, i))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	_ = b.Close() // sends the last notification
	elapsed := time.Since(start)
	notifies := 0
	for _, q := range counter.take() {
		if strings.Contains(q, "pg_notify") {
			notifies++
		}
	}
	limit := int(elapsed/(5*time.Millisecond)) + 2
	t.Logf("%d appends in %v sent %d notifications", writers*each, elapsed.Round(time.Millisecond), notifies)
	if notifies == 0 || notifies > limit {
		t.Fatalf("%d appends in %v sent %d notifications, want 1 to %d", writers*each, elapsed, notifies, limit)
	}
}
