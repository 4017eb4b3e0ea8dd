package sqltest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/internal/probe"
	"github.com/aggregatekit/eventsourcing/internal/testkit"
	"github.com/aggregatekit/eventsourcing/projection"
)

var ctx = context.Background()

// database is one database under test.
type database struct {
	name    string
	db      *sql.DB
	dialect projection.Dialect
	prefix  string        // where this test's tables go: "" or "<schema>."
	pool    *pgxpool.Pool // PostgreSQL only
	schema  string        // PostgreSQL only
}

// databases returns the databases to run a test on: SQLite and PostgreSQL.
func databases() map[string]func(t testing.TB) database {
	return map[string]func(t testing.TB) database{"sqlite": openSQLite, "postgres": openPostgres}
}

// openSQLite opens a new SQLite database file, closed when t ends.
func openSQLite(t testing.TB) database {
	t.Helper()
	path := filepath.Join(t.TempDir(), "readside.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(4)
	t.Cleanup(func() { db.Close() })
	return database{name: "sqlite", db: db, dialect: projection.SQLite}
}

var schemas atomic.Int64

// openPostgres connects to the test server and makes a schema for the
// test, dropped when t ends.
func openPostgres(t testing.TB) database {
	t.Helper()
	url := testkit.Get(t, testkit.PostgresURL)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 12
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	schema := fmt.Sprintf("readside_%d_%d", time.Now().UnixNano()%1e9, schemas.Add(1))
	if _, err := pool.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDBFromPool(pool)
	t.Cleanup(func() {
		db.Close()
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := pool.Exec(dctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
	})
	return database{name: "postgres", db: db, dialect: projection.PostgreSQL, prefix: schema + ".", pool: pool, schema: schema}
}

// store returns an SQLStore in d.
func (d database) store(t testing.TB) *projection.SQLStore {
	t.Helper()
	s, err := projection.NewSQLStore(ctx, d.db, d.dialect, projection.WithTablePrefix(d.prefix+"proj_"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rebind rewrites ? placeholders as $n for PostgreSQL.
func (d database) rebind(q string) string {
	if d.dialect != projection.PostgreSQL {
		return q
	}
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// sqlModel is a read model in the database: one row per Added event
// applied, written through the runner's transaction. The table has no
// unique key, so an event applied twice shows as two rows.
type sqlModel struct {
	d     database
	table string
	fail  func(e probe.Added) error // optional: fails the event after its row is written
}

func newSQLModel(t testing.TB, d database, name string) *sqlModel {
	t.Helper()
	m := &sqlModel{d: d, table: d.prefix + name}
	if _, err := d.db.ExecContext(ctx, `CREATE TABLE `+m.table+` (
		aggregate_type TEXT NOT NULL, stream_key TEXT NOT NULL, sequence BIGINT NOT NULL, id TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return m
}

// Open returns a projection over m.
func (m *sqlModel) Open(reg es.EventRegistry) (*projection.Projection, error) {
	return projection.New("sqlmodel", reg, m)
}

// ProjectAdded writes the event's row, then fails if m.fail says so (so a
// failed event has written something that must be rolled back).
func (m *sqlModel) ProjectAdded(ctx context.Context, tx *sql.Tx, ev projection.Event, e probe.Added) error {
	if _, err := tx.ExecContext(ctx, m.d.rebind(`INSERT INTO `+m.table+` (aggregate_type, stream_key, sequence, id) VALUES (?, ?, ?, ?)`),
		ev.Stream.AggregateType, ev.Stream.Key, ev.Sequence, e.ID); err != nil {
		return err
	}
	if m.fail != nil {
		return m.fail(e)
	}
	return nil
}

// Applied returns the rows, by stream, in sequence order.
func (m *sqlModel) Applied(ctx context.Context) (map[es.StreamID][]string, error) {
	rows, err := m.d.db.QueryContext(ctx, `SELECT aggregate_type, stream_key, id FROM `+m.table+` ORDER BY aggregate_type, stream_key, sequence`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[es.StreamID][]string{}
	for rows.Next() {
		var s es.StreamID
		var id string
		if err := rows.Scan(&s.AggregateType, &s.Key, &id); err != nil {
			return nil, err
		}
		out[s] = append(out[s], id)
	}
	return out, rows.Err()
}

var errBad = errors.New("bad event")
