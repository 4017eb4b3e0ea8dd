package sqlitestore_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/internal/cputime"
	"github.com/aggregatekit/eventsourcing/stores/sqlitestore"
)

// Benchmarks compare the store with hand-written database/sql code doing
// the same work on the same database, in the same run, and report CPU time
// per operation beside wall time (the machine is shared):
//
//	go test -run '^$' -bench . ./stores/sqlitestore/

// pair runs ours and raw alternately, b.N times each, and reports each
// side's wall and CPU time per operation and the ratios ours/raw (the
// medians of the per-iteration ratios, so that a burst of load elsewhere
// on the machine hits both sides alike).
func pair(b *testing.B, unit string, ours, raw func(i int)) {
	b.Helper()
	var wallO, wallR, cpuO, cpuR time.Duration
	var ratios []float64
	i := 0
	for b.Loop() {
		c0, t0 := cputime.Process(), time.Now()
		raw(i)
		c1, t1 := cputime.Process(), time.Now()
		ours(i)
		c2, t2 := cputime.Process(), time.Now()
		wallR, wallO = wallR+t1.Sub(t0), wallO+t2.Sub(t1)
		cpuR, cpuO = cpuR+c1-c0, cpuO+c2-c1
		ratios = append(ratios, float64(t2.Sub(t1))/float64(t1.Sub(t0)))
		i++
	}
	slices.Sort(ratios)
	n := float64(i)
	b.ReportMetric(float64(wallO.Nanoseconds())/n, "ours-ns/"+unit)
	b.ReportMetric(float64(wallR.Nanoseconds())/n, "raw-ns/"+unit)
	b.ReportMetric(float64(cpuO.Nanoseconds())/n, "ours-cpu-ns/"+unit)
	b.ReportMetric(float64(cpuR.Nanoseconds())/n, "raw-cpu-ns/"+unit)
	b.ReportMetric(ratios[len(ratios)/2], "ours/raw")
	if cpuR > 0 {
		b.ReportMetric(float64(cpuO)/float64(cpuR), "ours/raw-cpu")
	}
}

var (
	benchData = []byte(`{"order":"ord-2026-000123","sku":"SKU-98765","quantity":3,"price":1999,"at":"2026-03-04T05:06:07.890123456Z"}`)
	benchMeta = backend.Metadata{"correlation_id": "0f8fad5b-d9cb-469f-a165-70867728950e"}
	benchSeq  atomic.Int64
)

func benchCommit(s backend.StreamID, expected int64, n int) backend.Commit {
	id := "bench-" + strconv.FormatInt(benchSeq.Add(1), 10)
	c := backend.Commit{Stream: s, Expected: expected, ID: id, Records: make([]backend.Record, n)}
	now := time.Now()
	for i := range c.Records {
		c.Records[i] = backend.Record{Stream: s, Sequence: expected + int64(i) + 1, EventType: "ItemAdded", Data: benchData,
			Timestamp: now, Metadata: benchMeta, CommitID: id}
	}
	return c
}

const rawInsert = `INSERT INTO es_events (aggregate_type, aggregate_key, sequence, commit_first, commit_last, commit_id, event_type, data, time, metadata)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// rawAppend is what a hand-written program does to store the same rows:
// one transaction of prepared inserts, with the time and the metadata
// encoded the usual way.
func rawAppend(ctx context.Context, db *sql.DB, insert *sql.Stmt, c backend.Commit) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st := tx.StmtContext(ctx, insert)
	for _, r := range c.Records {
		md, err := json.Marshal(r.Metadata)
		if err != nil {
			return err
		}
		if _, err := st.ExecContext(ctx, r.Stream.AggregateType, r.Stream.Key, r.Sequence, c.First(), c.Last(), c.ID, r.EventType, r.Data,
			r.Timestamp.UTC().Format("2006-01-02T15:04:05.000000000Z"), string(md)); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// BenchmarkAppend appends commits of 1 and of 10 events at the head of a
// growing stream: Append (checks, encodes, one transaction of inserts plus
// the head check) next to rawAppend of the same rows, at both durability
// levels.
func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	for _, syn := range []sqlitestore.Synchronous{sqlitestore.SynchronousFull, sqlitestore.SynchronousNormal} {
		for _, events := range []int{1, 10} {
			b.Run(fmt.Sprintf("synchronous=%s/events=%d", syn, events), func(b *testing.B) {
				be := open(b, filepath.Join(b.TempDir(), "append.db"), sqlitestore.WithSynchronous(syn))
				insert, err := be.DB().PrepareContext(ctx, rawInsert)
				if err != nil {
					b.Fatal(err)
				}
				defer insert.Close()
				ours := backend.StreamID{AggregateType: "Bench", Key: "ours"}
				raw := backend.StreamID{AggregateType: "Bench", Key: "raw"}
				var headO, headR int64
				pair(b, "commit",
					func(int) {
						c := benchCommit(ours, headO, events)
						if err := be.Append(ctx, c); err != nil {
							b.Fatal(err)
						}
						headO = c.Last()
					},
					func(int) {
						c := benchCommit(raw, headR, events)
						if err := rawAppend(ctx, be.DB(), insert, c); err != nil {
							b.Fatal(err)
						}
						headR = c.Last()
					})
			})
		}
	}
}

// BenchmarkLoad loads a stream of 1,000 events: Load with the record cache
// off (every row read and decoded) and on (a warm cache: one query for
// the rows after the cached ones), next to a hand-written query of the
// same rows decoded into the same records.
func BenchmarkLoad(b *testing.B) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "load.db")
	w := open(b, path)
	s := backend.StreamID{AggregateType: "Bench", Key: "load"}
	for i := int64(0); i < 1000; i += 100 {
		if err := w.Append(ctx, benchCommit(s, i, 100)); err != nil {
			b.Fatal(err)
		}
	}
	query, err := w.DB().PrepareContext(ctx, `SELECT sequence, commit_id, event_type, data, time, metadata FROM es_events
		WHERE aggregate_type = ? AND aggregate_key = ? AND sequence > ? ORDER BY sequence`)
	if err != nil {
		b.Fatal(err)
	}
	defer query.Close()
	raw := func(int) {
		rows, err := query.QueryContext(ctx, s.AggregateType, s.Key, 0)
		if err != nil {
			b.Fatal(err)
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			var r backend.Record
			var ts string
			var md *string
			if err := rows.Scan(&r.Sequence, &r.CommitID, &r.EventType, &r.Data, &ts, &md); err != nil {
				b.Fatal(err)
			}
			if r.Timestamp, err = time.Parse(time.RFC3339Nano, ts); err != nil {
				b.Fatal(err)
			}
			if md != nil {
				if err := json.Unmarshal([]byte(*md), &r.Metadata); err != nil {
					b.Fatal(err)
				}
			}
			r.Stream = s
			n++
		}
		if err := rows.Err(); err != nil || n != 1000 {
			b.Fatalf("raw load: %d rows, %v", n, err)
		}
	}
	for _, cache := range []int{0, sqlitestore.DefaultRecordCacheSize} {
		name := "cache=off"
		if cache > 0 {
			name = "cache=on"
		}
		b.Run(name, func(b *testing.B) {
			be := open(b, path, sqlitestore.WithRecordCache(cache))
			pair(b, "load", func(int) {
				n := 0
				for _, err := range be.Load(ctx, s, 0) {
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
				if n != 1000 {
					b.Fatalf("loaded %d events", n)
				}
			}, raw)
		})
	}
}

// BenchmarkCommands runs commands through eventsourcing.NewStore from 1
// goroutine on 1 aggregate and from 8 goroutines on 8 aggregates, each
// goroutine keeping its aggregate (so each command loads only what is
// new, then commits one event). It reports commands per second (wall) and
// CPU time per command.
func BenchmarkCommands(b *testing.B) {
	ctx := context.Background()
	reg := es.NewStandardEventRegistry("bench")
	if err := reg.RegisterEvent(Incremented{}); err != nil {
		b.Fatal(err)
	}
	for _, syn := range []sqlitestore.Synchronous{sqlitestore.SynchronousFull, sqlitestore.SynchronousNormal} {
		for _, writers := range []int{1, 8} {
			b.Run(fmt.Sprintf("synchronous=%s/writers=%d", syn, writers), func(b *testing.B) {
				be := open(b, filepath.Join(b.TempDir(), "commands.db"), sqlitestore.WithSynchronous(syn))
				store := es.NewStore(be)
				counters := make([]*Counter, writers)
				for i := range counters {
					counters[i] = newCounter("c"+strconv.Itoa(i)+"-"+strconv.FormatInt(benchSeq.Add(1), 10), reg, store)
				}
				var next atomic.Int64
				c0 := cputime.Process()
				b.ResetTimer()
				var wg sync.WaitGroup
				for _, c := range counters {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for next.Add(1) <= int64(b.N) {
							if err := c.Handle(ctx, Increment{By: 1}); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commands/s")
				b.ReportMetric(float64((cputime.Process()-c0).Nanoseconds())/float64(b.N), "cpu-ns/command")
			})
		}
	}
}
