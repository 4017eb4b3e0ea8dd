package pgstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/internal/cputime"
	"github.com/aggregatekit/eventsourcing/internal/testkit"
	"github.com/aggregatekit/eventsourcing/stores/pgstore"
)

// Benchmarks compare the store with raw pgx doing the same work on the same
// server in the same run, alternating the two in blocks so that load from
// elsewhere on the shared machine hits both alike:
//
//	bash tools/testservers.sh -- go test -run '^$' -bench . ./stores/pgstore/
//
// Each reports, per operation and for each side, the wall time, this
// process's CPU time and, when the server's PID is known (testservers.sh
// exports it), the PostgreSQL server's CPU time (all its processes), and
// the ratios store/raw.

// side is one way of doing the work in a paired benchmark.
type side struct {
	name              string
	run               func(i int) error
	n                 int
	wall, cpu, server time.Duration
}

// alternate runs store and raw in turns of block operations each, until the
// benchmark has run b.N operations in all, and reports per operation the
// wall, process CPU and server CPU time of each side and their ratios.
func alternate(b *testing.B, block int, store, raw *side) {
	b.Helper()
	server := testkit.Server("postgres").CPU()
	sides := []*side{store, raw}
	var (
		cur *side
		s0  time.Duration
	)
	flush := func() {
		if cur != nil && server != nil {
			cur.server += server() - s0
		}
	}
	i := 0
	for b.Loop() {
		if o := sides[(i/block)%2]; o != cur {
			flush()
			cur = o
			if server != nil {
				s0 = server()
			}
		}
		c0, t0 := cputime.Process(), time.Now()
		if err := cur.run(cur.n); err != nil {
			b.Fatalf("%s: %v", cur.name, err)
		}
		cur.wall += time.Since(t0)
		cur.cpu += cputime.Process() - c0
		cur.n++
		i++
	}
	flush()
	for _, s := range sides {
		if s.n == 0 {
			return
		}
	}
	per := func(d time.Duration, n int) float64 { return float64(d.Nanoseconds()) / float64(n) }
	for _, s := range sides {
		b.ReportMetric(per(s.wall, s.n), s.name+"-ns/op")
		b.ReportMetric(per(s.cpu, s.n), s.name+"-cpu-ns/op")
		if server != nil {
			b.ReportMetric(per(s.server, s.n), s.name+"-server-cpu-ns/op")
		}
	}
	b.ReportMetric(per(store.wall, store.n)/per(raw.wall, raw.n), "store/raw")
	b.ReportMetric(per(store.cpu, store.n)/per(raw.cpu, raw.n), "cpu-store/raw")
	if server != nil && raw.server > 0 {
		b.ReportMetric(per(store.server, store.n)/per(raw.server, raw.n), "server-cpu-store/raw")
	}
}

// benchEnv is a pool, a fresh schema and a Backend on it.
type benchEnv struct {
	pool   *pgxpool.Pool
	schema string
	events string // the events table, quoted
	b      *pgstore.Backend
}

func newBenchEnv(b *testing.B, maxConns int32, opts ...pgstore.Option) benchEnv {
	b.Helper()
	pool := newPool(b, maxConns)
	schema := newSchema(b, pool)
	return benchEnv{pool: pool, schema: schema, events: pgx.Identifier{schema, "events"}.Sanitize(), b: newBackend(b, pool, schema, opts...)}
}

// benchCommit is the commit of n events the benchmarks append: a small JSON
// payload and one metadata header per event, as a command with a
// correlation ID writes.
func benchCommit(s backend.StreamID, expected int64, n int, id string) backend.Commit {
	c := backend.Commit{Stream: s, Expected: expected, ID: id, Records: make([]backend.Record, n)}
	now := time.Now()
	md := backend.Metadata{"correlation_id": "corr-0123456789"}
	for i := range c.Records {
		c.Records[i] = backend.Record{Stream: s, Sequence: expected + int64(i) + 1, EventType: "Incremented",
			Data: []byte(`{"By":1,"Note":"benchmark event"}`), Timestamp: now, Metadata: md, CommitID: id}
	}
	return c
}

// rawInsert inserts the rows of c as a hand-written pgx program would: one
// multi-row INSERT ... VALUES, its metadata encoded per row, no head check.
func rawInsert(ctx context.Context, pool *pgxpool.Pool, events string, c backend.Commit) error {
	var sql strings.Builder
	sql.WriteString(`INSERT INTO ` + events + ` (aggregate, key, seq, commit_id, event_type, data, time, time_ns, metadata) VALUES `)
	args := make([]any, 0, 9*len(c.Records))
	for i, r := range c.Records {
		md, err := json.Marshal(r.Metadata)
		if err != nil {
			return err
		}
		if i > 0 {
			sql.WriteByte(',')
		}
		n := len(args)
		fmt.Fprintf(&sql, "($%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d)", n+1, n+2, n+3, n+4, n+5, n+6, n+7, n+8, n+9)
		args = append(args, c.Stream.AggregateType, c.Stream.Key, r.Sequence, c.ID, r.EventType, r.Data,
			r.Timestamp.Truncate(time.Microsecond), int16(r.Timestamp.Nanosecond()%1000), md)
	}
	_, err := pool.Exec(ctx, sql.String(), args...)
	return err
}

// BenchmarkAppend appends commits: "new-stream" at expected 0 (no head
// check), "existing-stream" at the head of a growing stream (the head check
// runs), "no-notify" the same with WithoutNotify, "10-events" a 10-event
// commit to a new stream. The raw side inserts the same rows with one
// multi-row INSERT.
func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	for _, c := range []struct {
		name     string
		events   int
		existing bool
		opts     []pgstore.Option
	}{
		{"new-stream", 1, false, nil},
		{"existing-stream", 1, true, nil},
		{"existing-stream-no-notify", 1, true, []pgstore.Option{pgstore.WithoutNotify()}},
		{"10-events", 10, false, nil},
	} {
		b.Run(c.name, func(b *testing.B) {
			env := newBenchEnv(b, 4, c.opts...)
			stream := func(side string, i int) (backend.StreamID, int64) {
				if c.existing {
					return backend.StreamID{AggregateType: "Counter", Key: side}, int64(i * c.events)
				}
				return backend.StreamID{AggregateType: "Counter", Key: side + strconv.Itoa(i)}, 0
			}
			alternate(b, 16,
				&side{name: "store", run: func(i int) error {
					s, exp := stream("store", i)
					return env.b.Append(ctx, benchCommit(s, exp, c.events, "s-"+strconv.Itoa(i)))
				}},
				&side{name: "raw", run: func(i int) error {
					s, exp := stream("raw", i)
					return rawInsert(ctx, env.pool, env.events, benchCommit(s, exp, c.events, "r-"+strconv.Itoa(i)))
				}})
		})
	}
}

// BenchmarkLoad loads a stream of 1,000 events (10 commits of 100): the
// store's Load against a raw query of the same rows, scanned and decoded
// into records (metadata JSON included).
func BenchmarkLoad1000(b *testing.B) {
	ctx := context.Background()
	env := newBenchEnv(b, 4)
	s := backend.StreamID{AggregateType: "Counter", Key: "thousand"}
	for i := 0; i < 10; i++ {
		if err := env.b.Append(ctx, benchCommit(s, int64(i*100), 100, "load-"+strconv.Itoa(i))); err != nil {
			b.Fatal(err)
		}
	}
	q := `SELECT seq, commit_id, event_type, data, time, time_ns, metadata FROM ` + env.events + `
WHERE aggregate = $1 AND key = $2 AND seq > $3 ORDER BY seq`
	alternate(b, 4,
		&side{name: "store", run: func(int) error {
			n := 0
			for _, err := range env.b.Load(ctx, s, 0) {
				if err != nil {
					return err
				}
				n++
			}
			if n != 1000 {
				return fmt.Errorf("loaded %d", n)
			}
			return nil
		}},
		&side{name: "raw", run: func(int) error {
			rows, err := env.pool.Query(ctx, q, s.AggregateType, s.Key, 0)
			if err != nil {
				return err
			}
			defer rows.Close()
			var recs []backend.Record
			for rows.Next() {
				r := backend.Record{Stream: s}
				var (
					ts time.Time
					ns int16
					md []byte
				)
				if err := rows.Scan(&r.Sequence, &r.CommitID, &r.EventType, &r.Data, &ts, &ns, &md); err != nil {
					return err
				}
				r.Timestamp = ts.UTC().Add(time.Duration(ns))
				if md != nil {
					if err := json.Unmarshal(md, &r.Metadata); err != nil {
						return err
					}
				}
				recs = append(recs, r)
			}
			if len(recs) != 1000 {
				return fmt.Errorf("loaded %d", len(recs))
			}
			return rows.Err()
		}})
}

// BenchmarkWriters16 runs 16 writers, each appending 1-event commits to a
// stream of its own, alternating rounds of the store's Append and of the raw
// insert (8 commits per writer per round). It reports the commits per second
// of each and their ratio, and per commit the CPU time of this process and
// of the server.
func BenchmarkWriters16(b *testing.B) {
	for _, c := range []struct {
		name string
		opts []pgstore.Option
	}{{"notify", nil}, {"no-notify", []pgstore.Option{pgstore.WithoutNotify()}}} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			env := newBenchEnv(b, 16, c.opts...)
			const writers, perRound = 16, 8
			heads := [2][writers]int64{}
			server := testkit.Server("postgres").CPU()
			var wall, cpu, srv [2]time.Duration
			round := func(kind int) error {
				var wg sync.WaitGroup
				errs := make(chan error, writers)
				var s0 time.Duration
				if server != nil {
					s0 = server()
				}
				c0, t0 := cputime.Process(), time.Now()
				for w := 0; w < writers; w++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						s := backend.StreamID{AggregateType: "Counter", Key: fmt.Sprintf("%d-%d", kind, w)}
						for i := 0; i < perRound; i++ {
							h := heads[kind][w]
							commit := benchCommit(s, h, 1, fmt.Sprintf("%d-%d-%d", kind, w, h))
							var err error
							if kind == 0 {
								err = env.b.Append(ctx, commit)
							} else {
								err = rawInsert(ctx, env.pool, env.events, commit)
							}
							if err != nil {
								errs <- err
								return
							}
							heads[kind][w]++
						}
					}()
				}
				wg.Wait()
				wall[kind] += time.Since(t0)
				cpu[kind] += cputime.Process() - c0
				if server != nil {
					srv[kind] += server() - s0
				}
				close(errs)
				return <-errs
			}
			rounds := 0
			for b.Loop() {
				for kind := 0; kind < 2; kind++ {
					if err := round(kind); err != nil {
						b.Fatal(err)
					}
				}
				rounds++
			}
			commits := float64(rounds * writers * perRound)
			for kind, name := range []string{"store", "raw"} {
				b.ReportMetric(commits/wall[kind].Seconds(), name+"-commits/s")
				b.ReportMetric(float64(cpu[kind].Nanoseconds())/commits, name+"-cpu-ns/commit")
				if server != nil {
					b.ReportMetric(float64(srv[kind].Nanoseconds())/commits, name+"-server-cpu-ns/commit")
				}
			}
			b.ReportMetric(wall[1].Seconds()/wall[0].Seconds(), "store/raw-throughput")
		})
	}
}

// BenchmarkFeedRead reads a feed of 10,000 events (2,000 commits of 5 events
// in 2,000 transactions) from the start: ReadFeed against a raw query of the
// same rows in the same order, scanned into records (without grouping them
// into commits or bounding the read by the snapshot's xmin).
func BenchmarkFeedRead(b *testing.B) {
	ctx := context.Background()
	env := newBenchEnv(b, 8)
	const commits, size = 2000, 5
	var wg sync.WaitGroup
	var next atomic.Int64
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := backend.StreamID{AggregateType: "Counter", Key: "feed-" + strconv.Itoa(w)}
			for h := int64(0); next.Add(1) <= commits; h += size {
				if err := env.b.Append(ctx, benchCommit(s, h, size, fmt.Sprintf("f-%d-%d", w, h))); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	q := `SELECT tx, position, aggregate, key, seq, commit_id, event_type, data, time, time_ns, metadata FROM ` + env.events + ` ORDER BY tx, position`
	start := time.Now()
	alternate(b, 1,
		&side{name: "store", run: func(int) error {
			n := 0
			for c, err := range env.b.ReadFeed(ctx, "") {
				if err != nil {
					return err
				}
				n += len(c.Records)
			}
			if n != commits*size {
				return fmt.Errorf("read %d events", n)
			}
			return nil
		}},
		&side{name: "raw", run: func(int) error {
			rows, err := env.pool.Query(ctx, q)
			if err != nil {
				return err
			}
			defer rows.Close()
			n := 0
			for rows.Next() {
				var (
					r   backend.Record
					tx  uint64
					pos int64
					ts  time.Time
					ns  int16
					md  []byte
				)
				if err := rows.Scan(&tx, &pos, &r.Stream.AggregateType, &r.Stream.Key, &r.Sequence, &r.CommitID, &r.EventType, &r.Data, &ts, &ns, &md); err != nil {
					return err
				}
				r.Timestamp = ts.UTC().Add(time.Duration(ns))
				if err := json.Unmarshal(md, &r.Metadata); err != nil {
					return err
				}
				n++
			}
			if n != commits*size {
				return fmt.Errorf("read %d events", n)
			}
			return rows.Err()
		}})
	b.ReportMetric(float64(commits*size*b.N)/time.Since(start).Seconds()/2, "events/s")
}

// BenchmarkFeedLag runs 16 writers appending 1-event commits to streams of
// their own while one reader tails the feed (ReadFeed, then WaitFeed), and
// reports the write rate and the lag from each Append's return to the
// reader's receiving the commit: median and 99th percentile. The reader
// uses a Backend of its own, as another process would. The writers
// run as fast as they can ("max", which saturates this 2-core machine, so
// the lag is mostly the reader waiting for a CPU) or at 1,600 commits/s in
// all ("1600/s"). "notify" wakes the reader with LISTEN/NOTIFY; "poll-50ms"
// appends WithoutNotify and polls every 50ms.
func BenchmarkFeedLag(b *testing.B) {
	for _, c := range []struct {
		name string
		rate int // commits per second in all; 0: as fast as possible
		opts []pgstore.Option
	}{
		{"notify-max", 0, nil},
		{"notify-1600/s", 1600, nil},
		{"poll-50ms-1600/s", 1600, []pgstore.Option{pgstore.WithoutNotify(), pgstore.WithPollInterval(50 * time.Millisecond)}},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			env := newBenchEnv(b, 20, c.opts...)
			// The reader is another process: a Backend on a pool of its own,
			// woken only by NOTIFY or its poll interval (a reader sharing
			// the writers' Backend is also woken directly by each append).
			reader := newBackend(b, newPool(b, 2), env.schema, c.opts...)
			const writers = 16
			var acked sync.Map // commit ID -> time.Time of Append's return
			var lags []time.Duration
			total := b.N
			readerDone := make(chan error, 1)
			go func() {
				var pos backend.Position
				seen := 0
				rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
				defer cancel()
				for seen < total {
					for fc, err := range reader.ReadFeed(rctx, pos) {
						if err != nil {
							readerDone <- err
							return
						}
						now := time.Now()
						pos = fc.Position
						seen++
						if t, ok := acked.Load(fc.ID); ok {
							lags = append(lags, now.Sub(t.(time.Time)))
						} else {
							lags = append(lags, 0) // yielded before Append returned
						}
					}
					if seen < total {
						if err := reader.WaitFeed(rctx, pos); err != nil {
							readerDone <- err
							return
						}
					}
				}
				readerDone <- nil
			}()
			var next atomic.Int64
			var wg sync.WaitGroup
			c0, t0 := cputime.Process(), time.Now()
			b.ResetTimer()
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := backend.StreamID{AggregateType: "Counter", Key: "lag-" + strconv.Itoa(w)}
					for h := int64(0); next.Add(1) <= int64(total); h++ {
						if c.rate > 0 { // this writer's share of the rate
							time.Sleep(time.Until(t0.Add(time.Duration(h+1) * time.Second * writers / time.Duration(c.rate))))
						}
						id := fmt.Sprintf("lag-%d-%d", w, h)
						if err := env.b.Append(ctx, benchCommit(s, h, 1, id)); err != nil {
							b.Error(err)
							return
						}
						acked.Store(id, time.Now())
					}
				}()
			}
			wg.Wait()
			writeTime := time.Since(t0)
			if err := <-readerDone; err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			cpu := cputime.Process() - c0
			slices.Sort(lags)
			pct := func(p float64) float64 {
				return float64(lags[min(len(lags)-1, int(p*float64(len(lags))))].Microseconds()) / 1000
			}
			b.ReportMetric(float64(total)/writeTime.Seconds(), "commits/s")
			b.ReportMetric(pct(0.5), "lag-p50-ms")
			b.ReportMetric(pct(0.99), "lag-p99-ms")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(total), "cpu-ns/commit")
		})
	}
}
