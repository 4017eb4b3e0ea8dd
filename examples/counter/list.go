package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/aggregatekit/eventsourcing/projection"
	"github.com/aggregatekit/eventsourcing/stores/pgstore"
	"github.com/aggregatekit/eventsourcing/stores/sqlitestore"
)

// errNoList reports a store without a feed to project the list from.
var errNoList = errors.New("listing counters needs a store with a feed: sqlite, memory or postgres " +
	"(on mongo or dynamodb, relay the events to NATS JetStream and project from there: see packages relay and projection)")

// counterList is the read model behind GET /counters: every counter with its
// count, in name order.
type counterList interface {
	// Page returns up to limit counters whose names sort after after.
	Page(ctx context.Context, after string, limit int) ([]CounterView, error)
}

// startList builds the list of counters from the store's feed before the
// server serves (a durable list is rebuilt only if it is missing), then
// keeps it current until ctx ends; wait waits for that to stop, before the
// store is closed. On a store without a feed it returns a list whose Page
// fails with errNoList.
func startList(ctx context.Context, st *stack, log *slog.Logger) (list counterList, wait func(), err error) {
	registry, err := NewRegistry()
	if err != nil {
		return nil, nil, err
	}
	src, err := projection.FromStore(st.store)
	if errors.Is(err, projection.ErrNoFeed) {
		return noList{}, func() {}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var (
		model    any
		progress projection.Store
	)
	switch b := st.backend.(type) {
	case *sqlitestore.Backend:
		l, s, err := newSQLList(ctx, b.DB(), projection.SQLite)
		if err != nil {
			return nil, nil, err
		}
		list, model, progress = l, l, s
	case *pgstore.Backend:
		l, s, err := newSQLList(ctx, stdlib.OpenDBFromPool(b.Pool()), projection.PostgreSQL)
		if err != nil {
			return nil, nil, err
		}
		list, model, progress = l, l, s
	default:
		l := &memoryList{views: map[string]CounterView{}}
		list, model, progress = l, l, projection.NewMemoryStore()
	}
	p, err := projection.New(listName, registry, model, projection.WithAggregateTypes("Counter"))
	if err != nil {
		return nil, nil, err
	}
	r, err := projection.NewRunner(p, src, progress, projection.WithHooks(projection.Hooks{
		Error: func(err error) { log.Warn("counter list", "error", err) },
	}))
	if err != nil {
		return nil, nil, err
	}
	if err := r.Start(ctx); err != nil {
		return nil, nil, fmt.Errorf("building the counter list: %w", err)
	}
	return list, r.Wait, nil
}

const listName = "counter-list"

// noList is the list of a store without a feed.
type noList struct{}

func (noList) Page(context.Context, string, int) ([]CounterView, error) { return nil, errNoList }

// memoryList keeps the list in memory: rebuilt from the feed at every start.
type memoryList struct {
	mu    sync.RWMutex
	views map[string]CounterView
	names []string // sorted
}

// ProjectIncremented applies an Incremented event.
func (l *memoryList) ProjectIncremented(ev projection.Event, e Incremented) {
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

func (l *memoryList) Page(_ context.Context, after string, limit int) ([]CounterView, error) {
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
	return out, nil
}

// sqlList keeps the list in a table of the store's own database, written in
// the same transaction as the projection's checkpoint, so it survives a
// restart and is rebuilt only if the table is missing.
type sqlList struct {
	db     *sql.DB
	upsert string
	page   string
}

func newSQLList(ctx context.Context, db *sql.DB, d projection.Dialect) (*sqlList, *projection.SQLStore, error) {
	progress, err := projection.NewSQLStore(ctx, db, d)
	if err != nil {
		return nil, nil, err
	}
	l := &sqlList{db: db,
		upsert: `INSERT INTO counter_list (name, count, sequence) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET count = counter_list.count + excluded.count, sequence = excluded.sequence`,
		page: `SELECT name, count, sequence FROM counter_list WHERE name > ? ORDER BY name LIMIT ?`}
	if d == projection.PostgreSQL {
		l.upsert = `INSERT INTO counter_list (name, count, sequence) VALUES ($1, $2, $3)
			ON CONFLICT (name) DO UPDATE SET count = counter_list.count + excluded.count, sequence = excluded.sequence`
		l.page = `SELECT name, count, sequence FROM counter_list WHERE name > $1 ORDER BY name LIMIT $2`
	}
	var exists int
	err = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM counter_list WHERE 1 = 0`).Scan(&exists)
	if err != nil { // missing: create it, and rebuild it from the first event
		if err := progress.Delete(ctx, projection.ID{Name: listName, Version: projection.DefaultVersion}); err != nil {
			return nil, nil, err
		}
		if _, err := db.ExecContext(ctx, `CREATE TABLE counter_list (name TEXT PRIMARY KEY, count BIGINT NOT NULL, sequence BIGINT NOT NULL)`); err != nil {
			return nil, nil, fmt.Errorf("creating the counter list: %w", err)
		}
	}
	return l, progress, nil
}

// ProjectIncremented applies an Incremented event in the projection's
// transaction.
func (l *sqlList) ProjectIncremented(ctx context.Context, tx *sql.Tx, ev projection.Event, e Incremented) error {
	_, err := tx.ExecContext(ctx, l.upsert, ev.Stream.Key, e.By, ev.Sequence)
	return err
}

func (l *sqlList) Page(ctx context.Context, after string, limit int) ([]CounterView, error) {
	rows, err := l.db.QueryContext(ctx, l.page, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []CounterView{}
	for rows.Next() {
		var v CounterView
		if err := rows.Scan(&v.Name, &v.Count, &v.Sequence); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
