package sqltest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/internal/probe"
	"github.com/aggregatekit/eventsourcing/projection"
	"github.com/aggregatekit/eventsourcing/projection/projectiontest"
	"github.com/aggregatekit/eventsourcing/stores/memory"
	"github.com/aggregatekit/eventsourcing/stores/pgstore"
	"github.com/aggregatekit/eventsourcing/stores/sqlitestore"
)

// Kill and restart a projector mid-stream while 16 writers commit, with
// the read model and the progress in one SQL database (a killed runner's
// transaction is rolled back by the database): events from the memory
// store's feed.
func TestKillRestartSQL(t *testing.T) {
	for name, open := range databases() {
		t.Run(name, func(t *testing.T) {
			d := open(t)
			{
				b := memory.NewBackend()
				res := projectiontest.RunKillRestart(t, projectiontest.KillConfig{
					Store:    es.NewStore(b),
					Source:   projection.FromFeed(b),
					Progress: d.store(t),
					Model:    newSQLModel(t, d, "applied"),
					Options:  []projection.RunnerOption{projection.WithBatchSize(16), projection.WithBackoff(time.Millisecond, 20*time.Millisecond)},
				})
				if res.InApply == 0 {
					t.Fatalf("%+v: no runner killed inside a transaction", res)
				}
			}
		})
	}
}

// The same on PostgreSQL end to end: events in the PostgreSQL store,
// read through its feed; read model and progress in the same database.
func TestKillRestartPostgresFeed(t *testing.T) {
	d := openPostgres(t)
	b, err := pgstore.NewBackend(ctx, d.pool, pgstore.WithSchema(d.schema+"_events"), pgstore.WithPollInterval(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.Close()
		_, _ = d.pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+d.schema+"_events CASCADE")
	})
	projectiontest.RunKillRestart(t, projectiontest.KillConfig{
		Store:    es.NewStore(b),
		Source:   projection.FromFeed(b),
		Progress: d.store(t),
		Model:    newSQLModel(t, d, "applied"),
		Options:  []projection.RunnerOption{projection.WithBatchSize(16), projection.WithBackoff(time.Millisecond, 20*time.Millisecond)},
	})
}

// addCommit returns a commit of n Added events to stream after head.
func addCommit(t testing.TB, stream es.StreamID, after int64, n int, batch string) backend.Commit {
	t.Helper()
	c := backend.Commit{Stream: stream, Expected: after, ID: es.NewCommitID()}
	for i := 0; i < n; i++ {
		data, err := json.Marshal(probe.Added{ID: fmt.Sprintf("%s-%d", batch, i), Batch: batch, Index: i, Size: n})
		if err != nil {
			t.Fatal(err)
		}
		c.Records = append(c.Records, backend.Record{Stream: stream, Sequence: after + int64(i) + 1, EventType: "Added",
			Data: data, Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC), CommitID: c.ID,
			Metadata: backend.Metadata{"batch": batch, "ünï": "ç"}})
	}
	return c
}

// A failed event leaves nothing of what its handler wrote; parked events
// are kept in the database with their data, listed, replayed (a failed
// replay keeps the event parked and its writes rolled back) and discarded.
func TestSQLPoisonParkReplay(t *testing.T) {
	for name, open := range databases() {
		t.Run(name, func(t *testing.T) {
			d := open(t)
			{
				b := memory.NewBackend()
				s := es.StreamID{AggregateType: "Probe", Key: "k"}
				for i := 0; i < 4; i++ {
					if err := b.Append(ctx, addCommit(t, s, int64(3*i), 3, fmt.Sprintf("c%d", i))); err != nil {
						t.Fatal(err)
					}
				}
				m := newSQLModel(t, d, "parkmodel")
				var mu sync.Mutex
				bad := map[string]bool{"c1-1": true}
				m.fail = func(e probe.Added) error {
					mu.Lock()
					defer mu.Unlock()
					if bad[e.ID] {
						return errBad
					}
					return nil
				}
				p, err := m.Open(probe.NewRegistry())
				if err != nil {
					t.Fatal(err)
				}
				store := d.store(t)
				r, err := projection.NewRunner(p, projection.FromFeed(b), store,
					projection.WithPolicy(projection.Policy{Attempts: 2, MinDelay: time.Millisecond, Then: projection.Park}))
				if err != nil {
					t.Fatal(err)
				}
				if err := r.CatchUp(ctx); err != nil {
					t.Fatal(err)
				}
				got, err := m.Applied(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if ids := strings.Join(got[s], ","); ids != "c0-0,c0-1,c0-2,c1-0,c1-2,c2-0,c2-1,c2-2,c3-0,c3-1,c3-2" {
					t.Fatalf("applied %s", ids)
				}
				var parked []projection.Parked
				for pk, err := range r.Parked(ctx) {
					if err != nil {
						t.Fatal(err)
					}
					parked = append(parked, pk)
				}
				if len(parked) != 1 {
					t.Fatalf("parked %+v", parked)
				}
				pk := parked[0]
				want := addCommit(t, s, 3, 3, "c1").Records[1]
				if pk.Stream != s || pk.Sequence != 5 || pk.Type != "Added" || string(pk.Data) != string(want.Data) ||
					!pk.Time.Equal(want.Timestamp) || pk.Metadata["ünï"] != "ç" || pk.Attempts != 2 ||
					!strings.Contains(pk.Error, "bad event") || pk.CommitID == "" || pk.Position == "" || time.Since(pk.ParkedAt) > time.Hour {
					t.Fatalf("parked %+v", pk)
				}
				if err := r.Replay(ctx, s, 5); !errors.Is(err, errBad) {
					t.Fatalf("a failing replay: %v", err)
				}
				if got, _ := m.Applied(ctx); len(got[s]) != 11 {
					t.Fatalf("a failed replay left %d rows, want 11", len(got[s]))
				}
				mu.Lock()
				delete(bad, "c1-1")
				mu.Unlock()
				if err := r.Replay(ctx, s, 5); err != nil {
					t.Fatal(err)
				}
				if got, _ := m.Applied(ctx); len(got[s]) != 12 {
					t.Fatalf("after the replay: %d rows, want 12", len(got[s]))
				}
				if err := r.Discard(ctx, s, 5); !errors.Is(err, projection.ErrNotParked) {
					t.Fatalf("discard after replay: %v", err)
				}
				if st := r.Status(); st.Parked != 1 || st.Position == "" {
					t.Fatalf("status %+v", st)
				}
			}
		})
	}
}

// Versions: each has its own progress; Activate switches; Delete forgets
// one version's progress only.
func TestSQLVersions(t *testing.T) {
	for name, open := range databases() {
		t.Run(name, func(t *testing.T) {
			d := open(t)
			{
				store := d.store(t)
				b := memory.NewBackend()
				s := es.StreamID{AggregateType: "Probe", Key: "v"}
				if err := b.Append(ctx, addCommit(t, s, 0, 2, "v")); err != nil {
					t.Fatal(err)
				}
				if v, err := store.Active(ctx, "vm"); err != nil || v != "" {
					t.Fatalf("active before any: %q %v", v, err)
				}
				for _, version := range []string{"1", "2"} {
					m := newSQLModel(t, d, "vm_"+version)
					p, err := projection.New("vm", probe.NewRegistry(), m, projection.WithVersion(version))
					if err != nil {
						t.Fatal(err)
					}
					r, err := projection.NewRunner(p, projection.FromFeed(b), store)
					if err != nil {
						t.Fatal(err)
					}
					if err := r.CatchUp(ctx); err != nil {
						t.Fatal(err)
					}
					if err := r.Activate(ctx); err != nil {
						t.Fatal(err)
					}
					if v, err := store.Active(ctx, "vm"); err != nil || v != version {
						t.Fatalf("active %q %v, want %s", v, err, version)
					}
				}
				if err := store.Delete(ctx, projection.ID{Name: "vm", Version: "1"}); err != nil {
					t.Fatal(err)
				}
				tx, err := store.Begin(ctx, projection.ID{Name: "vm", Version: "1"})
				if err != nil {
					t.Fatal(err)
				}
				if pos, err := tx.Checkpoint(ctx); err != nil || pos != "" {
					t.Fatalf("version 1 after Delete: %q %v", pos, err)
				}
				if seqs, err := tx.Sequences(ctx, []es.StreamID{s}); err != nil || len(seqs) != 0 {
					t.Fatalf("version 1 after Delete: %v %v", seqs, err)
				}
				tx.Rollback()
				tx, err = store.Begin(ctx, projection.ID{Name: "vm", Version: "2"})
				if err != nil {
					t.Fatal(err)
				}
				if seqs, err := tx.Sequences(ctx, []es.StreamID{s}); err != nil || seqs[s] != 2 {
					t.Fatalf("version 2 after deleting 1: %v %v", seqs, err)
				}
				tx.Rollback()
			}
		})
	}
}

// Two runners of one projection on one database serialise on the
// checkpoint row and together apply everything once.
func TestSQLTwoRunners(t *testing.T) {
	for name, open := range databases() {
		t.Run(name, func(t *testing.T) {
			d := open(t)
			{
				b := memory.NewBackend()
				want := map[es.StreamID][]string{}
				heads := map[es.StreamID]int64{}
				for i := 0; i < 400; i++ {
					s := es.StreamID{AggregateType: "Probe", Key: fmt.Sprintf("s%d", i%13)}
					c := addCommit(t, s, heads[s], 1+i%3, fmt.Sprintf("b%d", i))
					if err := b.Append(ctx, c); err != nil {
						t.Fatal(err)
					}
					heads[s] += int64(len(c.Records))
					for _, r := range c.Records {
						var e probe.Added
						_ = json.Unmarshal(r.Data, &e)
						want[s] = append(want[s], e.ID)
					}
				}
				m := newSQLModel(t, d, "two")
				store := d.store(t)
				var wg sync.WaitGroup
				for i := 0; i < 2; i++ {
					p, err := m.Open(probe.NewRegistry())
					if err != nil {
						t.Fatal(err)
					}
					r, err := projection.NewRunner(p, projection.FromFeed(b), store, projection.WithBatchSize(7),
						projection.WithBackoff(time.Millisecond, 10*time.Millisecond))
					if err != nil {
						t.Fatal(err)
					}
					wg.Go(func() {
						if err := r.CatchUp(ctx); err != nil {
							t.Error(err)
						}
					})
				}
				wg.Wait()
				got, err := m.Applied(ctx)
				if err != nil {
					t.Fatal(err)
				}
				projectiontest.Compare(t, got, want)
			}
		})
	}
}

// NewSQLStore refuses what it cannot use.
func TestNewSQLStoreRefuses(t *testing.T) {
	d := openSQLite(t)
	for name, f := range map[string]func() error{
		"nil db":  func() error { _, err := projection.NewSQLStore(ctx, nil, projection.SQLite); return err },
		"dialect": func() error { _, err := projection.NewSQLStore(ctx, d.db, projection.Dialect(9)); return err },
		"prefix": func() error {
			_, err := projection.NewSQLStore(ctx, d.db, projection.SQLite, projection.WithTablePrefix("Bad-"))
			return err
		},
		"injection": func() error {
			_, err := projection.NewSQLStore(ctx, d.db, projection.SQLite, projection.WithTablePrefix("x; drop"))
			return err
		},
		"no tables": func() error {
			s, _ := projection.NewSQLStore(ctx, d.db, projection.SQLite, projection.WithTablePrefix("none_"), projection.WithoutTableCreation())
			_, err := s.Active(ctx, "x")
			return err
		},
		"closed": func() error { d.db.Close(); _, err := projection.NewSQLStore(ctx, d.db, projection.SQLite); return err },
	} {
		if err := f(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// The same on SQLite end to end: events in the SQLite store, read through
// its feed; read model and progress in the same database file, through
// the same *sql.DB.
func TestKillRestartSQLiteFeed(t *testing.T) {
	d := openSQLite(t)
	b, err := sqlitestore.NewBackend(ctx, d.db, sqlitestore.WithPollInterval(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	projectiontest.RunKillRestart(t, projectiontest.KillConfig{
		Store:    es.NewStore(b),
		Source:   projection.FromFeed(b),
		Progress: d.store(t),
		Model:    newSQLModel(t, d, "applied"),
		Options:  []projection.RunnerOption{projection.WithBatchSize(16), projection.WithBackoff(time.Millisecond, 20*time.Millisecond)},
	})
}
