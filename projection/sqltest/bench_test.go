package sqltest

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/internal/cputime"
	"github.com/aggregatekit/eventsourcing/internal/latencybench"
	"github.com/aggregatekit/eventsourcing/internal/probe"
	"github.com/aggregatekit/eventsourcing/projection"
	"github.com/aggregatekit/eventsourcing/stores/memory"
	"github.com/aggregatekit/eventsourcing/stores/pgstore"
	"github.com/aggregatekit/eventsourcing/stores/sqlitestore"
)

// fill appends commits of 2 Added events over 16 streams until n events
// are stored.
func fill(b testing.TB, bk backend.Backend, n int) {
	b.Helper()
	heads := map[es.StreamID]int64{}
	for i := 0; i < (n+1)/2; i++ {
		s := es.StreamID{AggregateType: "Probe", Key: fmt.Sprintf("s%d", i%16)}
		if err := bk.Append(ctx, addCommit(b, s, heads[s], 2, fmt.Sprintf("b%d", i))); err != nil {
			b.Fatal(err)
		}
		heads[s] += 2
	}
}

// BenchmarkProjectSQL projects b.N stored events (commits of 2 over 16
// streams, from the memory feed) into an SQL read model of one row per
// event, with the progress in the same database, against a hand-written
// baseline over the same driver: per 256 commits, one transaction of the
// same inserts and one checkpoint update. It reports events/s and the
// client's CPU time per event.
func BenchmarkProjectSQL(b *testing.B) {
	for _, name := range []string{"sqlite", "postgres"} {
		for _, mode := range []string{"baseline", "runner"} {
			b.Run(name+"/"+mode, func(b *testing.B) {
				benchProject(b, databases()[name](b), mode)
			})
		}
	}
}

func benchProject(b *testing.B, d database, mode string) {
	m := memory.NewBackend()
	fill(b, m, b.N)
	benchFeed(b, d, m, mode)
}

// feedBackend is a Backend with a Feed.
type feedBackend interface {
	backend.Backend
	backend.Feed
}

// benchFeed projects what m's feed holds into an SQL read model in d.
func benchFeed(b *testing.B, d database, m feedBackend, mode string) {
	model := newSQLModel(b, d, "bench")
	cpu0 := cputime.Process()
	b.ResetTimer()
	start := time.Now()
	switch mode {
	case "baseline":
		baselineSQL(b, d, m, model)
	case "runner":
		p, err := model.Open(probe.NewRegistry())
		if err != nil {
			b.Fatal(err)
		}
		r, err := projection.NewRunner(p, projection.FromFeed(m), d.store(b))
		if err != nil {
			b.Fatal(err)
		}
		if err := r.CatchUp(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	elapsed := time.Since(start)
	got, err := model.Applied(ctx)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, ids := range got {
		n += len(ids)
	}
	if n < b.N {
		b.Fatalf("applied %d of %d", n, b.N)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(cputime.Process()-cpu0)/float64(n), "cpu-ns/event")
}

// baselineSQL is what a hand-written projector does: read the feed in
// batches, insert each event's row and store the position, one
// transaction per batch.
func baselineSQL(b *testing.B, d database, m backend.Feed, model *sqlModel) {
	if _, err := d.db.ExecContext(ctx, `CREATE TABLE `+d.prefix+`bench_cp (name TEXT PRIMARY KEY, position TEXT NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	if _, err := d.db.ExecContext(ctx, d.rebind(`INSERT INTO `+d.prefix+`bench_cp VALUES (?, '')`), "x"); err != nil {
		b.Fatal(err)
	}
	insert := d.rebind(`INSERT INTO ` + model.table + ` (aggregate_type, stream_key, sequence, id) VALUES (?, ?, ?, ?)`)
	update := d.rebind(`UPDATE ` + d.prefix + `bench_cp SET position = ? WHERE name = ?`)
	var after backend.Position
	for {
		var batch []backend.FeedCommit
		for c, err := range m.ReadFeed(ctx, after) {
			if err != nil {
				b.Fatal(err)
			}
			batch = append(batch, c)
			if len(batch) == projection.DefaultBatchSize {
				break
			}
		}
		if len(batch) == 0 {
			return
		}
		tx, err := d.db.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range batch {
			for _, rec := range c.Records {
				var e probe.Added
				if err := json.Unmarshal(rec.Data, &e); err != nil {
					b.Fatal(err)
				}
				if _, err := tx.ExecContext(ctx, insert, c.Stream.AggregateType, c.Stream.Key, rec.Sequence, e.ID); err != nil {
					b.Fatal(err)
				}
			}
		}
		after = batch[len(batch)-1].Position
		if _, err := tx.ExecContext(ctx, update, string(after), "x"); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLatencyPostgresFeed measures the time from a command's commit
// to the moment its event is in the read model, end to end on PostgreSQL:
// 4 writers commit b.N commands of one event through aggregates on the
// PostgreSQL store, each at most one every 2 ms, while a runner follows
// the store's feed (woken by its notifications) into a read model in the
// same database. It reports p50 and p99 in microseconds and the client's
// CPU time per command.
func BenchmarkLatencyPostgresFeed(b *testing.B) {
	d := openPostgres(b)
	bk, err := pgstore.NewBackend(ctx, d.pool, pgstore.WithSchema(d.schema+"_events"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		bk.Close()
		_, _ = d.pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+d.schema+"_events CASCADE")
	})
	latencyBench(b, d, es.NewStore(bk), projection.FromFeed(bk), 2*time.Millisecond)
}

// BenchmarkLatencySQL is BenchmarkLatencyPostgresFeed with the events in
// the memory store (each writer at most one command every 2 ms) and the
// read model in SQLite or PostgreSQL.
func BenchmarkLatencySQL(b *testing.B) {
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			d := databases()[name](b)
			m := memory.NewBackend()
			latencyBench(b, d, es.NewStore(m), projection.FromFeed(m), 2*time.Millisecond)
		})
	}
}

func latencyBench(b *testing.B, d database, store es.EventStore, src projection.Source, pace time.Duration) {
	reg := probe.NewRegistry()
	model := newSQLModel(b, d, "latency")
	var lat latencybench.Recorder
	p, err := projection.New("latency", reg, &timedModel{sqlModel: model, note: lat.Applied})
	if err != nil {
		b.Fatal(err)
	}
	r, err := projection.NewRunner(p, src, d.store(b),
		projection.WithHooks(projection.Hooks{Batch: func(projection.Batch) { lat.Committed() }}))
	if err != nil {
		b.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	cpu0 := cputime.Process()
	b.ResetTimer()
	latencybench.WriteCommands(b, ctx, reg, store, 4, b.N, pace)
	lat.Wait(b, b.N)
	cancel()
	<-done
	lat.Report(b, cpu0)
}

// timedModel notes the commit time of each event it applies.
type timedModel struct {
	*sqlModel
	note func(time.Time)
}

// ProjectAdded writes the row and notes the event's commit time.
func (m *timedModel) ProjectAdded(ctx context.Context, tx *sql.Tx, ev projection.Event, e probe.Added) error {
	m.note(ev.Time)
	return m.sqlModel.ProjectAdded(ctx, tx, ev, e)
}

// BenchmarkProjectPostgresFeed projects b.N events (commits of 2 over 16
// streams) stored in the PostgreSQL store, read through its feed, into
// the same SQL read model and progress tables in the same database,
// against the hand-written baseline of BenchmarkProjectSQL over the same
// feed. It reports events/s and the client's CPU time per event.
func BenchmarkProjectPostgresFeed(b *testing.B) {
	for _, mode := range []string{"baseline", "runner"} {
		b.Run(mode, func(b *testing.B) {
			d := openPostgres(b)
			bk, err := pgstore.NewBackend(ctx, d.pool, pgstore.WithSchema(d.schema+"_events"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() {
				bk.Close()
				_, _ = d.pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+d.schema+"_events CASCADE")
			})
			fill(b, bk, b.N)
			benchFeed(b, d, bk, mode)
		})
	}
}

// BenchmarkProjectSQLiteFeed is BenchmarkProjectPostgresFeed on SQLite:
// the events in the SQLite store, the read model and the progress in the
// same file, through the same *sql.DB.
func BenchmarkProjectSQLiteFeed(b *testing.B) {
	for _, mode := range []string{"baseline", "runner"} {
		b.Run(mode, func(b *testing.B) {
			d := openSQLite(b)
			bk, err := sqlitestore.NewBackend(ctx, d.db)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { bk.Close() })
			fill(b, bk, b.N)
			benchFeed(b, d, bk, mode)
		})
	}
}
