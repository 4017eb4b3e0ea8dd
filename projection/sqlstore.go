package projection

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"reflect"
	"strconv"
	"strings"
	"time"

	es "github.com/aggregatekit/eventsourcing"
)

// Dialect is the SQL dialect of an SQLStore's database.
type Dialect int

// The dialects an SQLStore speaks.
const (
	// PostgreSQL (13 or later), through any database/sql driver (pgx's
	// stdlib package: driver name "pgx").
	PostgreSQL Dialect = iota + 1
	// SQLite (3.35 or later), through any database/sql driver
	// (modernc.org/sqlite: driver name "sqlite").
	SQLite
)

// String returns "postgresql" or "sqlite".
func (d Dialect) String() string {
	switch d {
	case PostgreSQL:
		return "postgresql"
	case SQLite:
		return "sqlite"
	}
	return "Dialect(" + strconv.Itoa(int(d)) + ")"
}

// DefaultTablePrefix starts the names of an SQLStore's tables.
const DefaultTablePrefix = "projection_"

// SQLOption configures NewSQLStore.
type SQLOption func(*sqlConfig)

type sqlConfig struct {
	prefix string
	create bool
}

// WithTablePrefix sets what the names of the store's tables start with
// (default DefaultTablePrefix): checkpoints, streams, parked and active
// follow it. It is 1 to 40 bytes of lower-case ASCII letters, digits and
// '_', optionally after a schema name and a dot ("readside.proj_").
func WithTablePrefix(prefix string) SQLOption { return func(c *sqlConfig) { c.prefix = prefix } }

// WithoutTableCreation makes NewSQLStore assume the tables exist (for a
// role that may not run DDL; the statements are in the package
// documentation of SQLStore) instead of creating what is missing.
func WithoutTableCreation() SQLOption { return func(c *sqlConfig) { c.create = false } }

// SQLStore keeps projections' progress in tables of a database/sql
// database, the read model's own: a projection's methods take the unit of
// work's *sql.Tx and write the read model through it, and the runner
// stores the checkpoint, the last sequence of each stream and parked
// events in the same transaction. A batch's effects and its progress are
// thus committed together or not at all: a runner killed at any point
// leaves the read model exactly at its checkpoint, and the next one goes
// on from there without applying an event twice.
//
// The tables (with the default prefix):
//
//	projection_checkpoints (name, version, position, updated)          primary key (name, version)
//	projection_streams     (name, version, aggregate_type, stream_key, sequence)
//	                                                                     primary key (name, version, aggregate_type, stream_key)
//	projection_parked      (name, version, aggregate_type, stream_key, sequence, commit_id, position,
//	                        event_type, data, metadata, event_time, error, attempts, parked_at)
//	                                                                     primary key (name, version, aggregate_type, stream_key, sequence)
//	projection_active      (name, version, updated)                    primary key (name)
//
// A unit of work starts by upserting its checkpoint row (which creates it
// the first time, reads the position and, on PostgreSQL, locks the row
// until the commit; on SQLite it takes the database's write lock), so
// runners of one projection serialise instead of interleaving. Round trips
// per batch: that upsert, one query for the sequences of the streams the
// runner does not have cached, the handler's statements, one multi-row
// upsert per 100 streams changed, one update of the checkpoint, and the
// commit.
//
// On SQLite, give the *sql.DB a busy timeout (modernc.org/sqlite:
// "_pragma=busy_timeout(5000)"), since the event store and the runner
// take the write lock in turn. Table creation is CREATE TABLE IF NOT
// EXISTS, which PostgreSQL may refuse when two processes run it at the
// same instant: create the tables once (at deployment, or in one
// process) where that can happen. Tested against SQLite through
// modernc.org/sqlite v1.62.0 and PostgreSQL 15 through pgx v5.12.0's
// database/sql driver. It is safe for concurrent use.
type SQLStore struct {
	db *sql.DB
	d  Dialect
	t  struct{ checkpoints, streams, parked, active string }
}

// NewSQLStore returns a store in db, which speaks dialect d, and creates
// its tables if they are missing (unless WithoutTableCreation).
func NewSQLStore(ctx context.Context, db *sql.DB, d Dialect, opts ...SQLOption) (*SQLStore, error) {
	if db == nil {
		return nil, errors.New("projection: NewSQLStore: nil *sql.DB")
	}
	if d != PostgreSQL && d != SQLite {
		return nil, fmt.Errorf("projection: NewSQLStore: unknown dialect %v (want PostgreSQL or SQLite)", d)
	}
	cfg := sqlConfig{prefix: DefaultTablePrefix, create: true}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if err := validPrefix(cfg.prefix); err != nil {
		return nil, err
	}
	s := &SQLStore{db: db, d: d}
	s.t.checkpoints = cfg.prefix + "checkpoints"
	s.t.streams = cfg.prefix + "streams"
	s.t.parked = cfg.prefix + "parked"
	s.t.active = cfg.prefix + "active"
	if cfg.create {
		if err := s.createTables(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func validPrefix(p string) error {
	name := p
	if i := strings.IndexByte(p, '.'); i >= 0 {
		if err := validIdent(p[:i]); err != nil {
			return fmt.Errorf("projection: table prefix %q: schema: %w", p, err)
		}
		name = p[i+1:]
	}
	if err := validIdent(name); err != nil {
		return fmt.Errorf("projection: table prefix %q: %w", p, err)
	}
	return nil
}

func validIdent(s string) error {
	if s == "" || len(s) > 40 {
		return errors.New("want 1 to 40 bytes")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || c == '_' || i > 0 && '0' <= c && c <= '9') {
			return fmt.Errorf("holds %q (want lower-case ASCII letters, digits and '_', not starting with a digit)", c)
		}
	}
	return nil
}

// createTables creates the store's tables if they are missing.
func (s *SQLStore) createTables(ctx context.Context) error {
	text, blob := "TEXT", "BLOB"
	if s.d == PostgreSQL {
		text, blob = `TEXT COLLATE "C"`, "BYTEA" // positions and keys sort bytewise
	}
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS ` + s.t.checkpoints + ` (
			name ` + text + ` NOT NULL, version ` + text + ` NOT NULL,
			position ` + text + ` NOT NULL, updated ` + text + ` NOT NULL,
			PRIMARY KEY (name, version))`,
		`CREATE TABLE IF NOT EXISTS ` + s.t.streams + ` (
			name ` + text + ` NOT NULL, version ` + text + ` NOT NULL,
			aggregate_type ` + text + ` NOT NULL, stream_key ` + text + ` NOT NULL, sequence BIGINT NOT NULL,
			PRIMARY KEY (name, version, aggregate_type, stream_key))`,
		`CREATE TABLE IF NOT EXISTS ` + s.t.parked + ` (
			name ` + text + ` NOT NULL, version ` + text + ` NOT NULL,
			aggregate_type ` + text + ` NOT NULL, stream_key ` + text + ` NOT NULL, sequence BIGINT NOT NULL,
			commit_id ` + text + ` NOT NULL, position ` + text + ` NOT NULL, event_type ` + text + ` NOT NULL,
			data ` + blob + ` NOT NULL, metadata ` + text + `, event_time ` + text + ` NOT NULL,
			error ` + text + ` NOT NULL, attempts INTEGER NOT NULL, parked_at ` + text + ` NOT NULL,
			PRIMARY KEY (name, version, aggregate_type, stream_key, sequence))`,
		`CREATE TABLE IF NOT EXISTS ` + s.t.active + ` (
			name ` + text + ` NOT NULL PRIMARY KEY, version ` + text + ` NOT NULL, updated ` + text + ` NOT NULL)`,
	}
	for _, q := range stmts {
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("projection: create tables: %w", err)
		}
	}
	return nil
}

// q rewrites the ? placeholders of query for the dialect.
func (s *SQLStore) q(query string) string {
	if s.d != PostgreSQL {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

var typeSQLTx = reflect.TypeFor[*sql.Tx]()

// HandleType returns the type of *sql.Tx.
func (s *SQLStore) HandleType() reflect.Type { return typeSQLTx }

// DB returns the store's database.
func (s *SQLStore) DB() *sql.DB { return s.db }

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

// Begin starts a database transaction for id.
func (s *SQLStore) Begin(ctx context.Context, id ID) (Tx, error) {
	if err := id.Validate(); err != nil {
		return nil, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("projection %s: begin: %w", id, err)
	}
	return &sqlTx{s: s, id: id, tx: tx, applied: map[es.StreamID]int64{}}, nil
}

// Parked yields id's parked events in source order, reading them in pages
// (no connection is held while the caller works).
func (s *SQLStore) Parked(ctx context.Context, id ID) iter.Seq2[Parked, error] {
	return func(yield func(Parked, error) bool) {
		const page = 100
		var after *Parked
		for {
			list, err := s.parkedPage(ctx, id, after, page)
			if err != nil {
				yield(Parked{}, fmt.Errorf("projection %s: list parked events: %w", id, err))
				return
			}
			for _, p := range list {
				if !yield(p, nil) {
					return
				}
			}
			if len(list) < page {
				return
			}
			after = &list[len(list)-1]
		}
	}
}

const parkedColumns = `aggregate_type, stream_key, sequence, commit_id, position, event_type, data, metadata, event_time, error, attempts, parked_at`

func (s *SQLStore) parkedPage(ctx context.Context, id ID, after *Parked, limit int) ([]Parked, error) {
	query := `SELECT ` + parkedColumns + ` FROM ` + s.t.parked + ` WHERE name = ? AND version = ?`
	args := []any{id.Name, id.Version}
	if after != nil {
		query += ` AND (position, aggregate_type, stream_key, sequence) > (?, ?, ?, ?)`
		args = append(args, string(after.Position), after.Stream.AggregateType, after.Stream.Key, after.Sequence)
	}
	query += ` ORDER BY position, aggregate_type, stream_key, sequence LIMIT ` + strconv.Itoa(limit)
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Parked
	for rows.Next() {
		p, err := scanParked(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func scanParked(row interface{ Scan(...any) error }) (Parked, error) {
	var p Parked
	var pos, md, evTime, parkedAt string
	var mdNull sql.NullString
	if err := row.Scan(&p.Stream.AggregateType, &p.Stream.Key, &p.Sequence, &p.CommitID, &pos, &p.Type, &p.Data,
		&mdNull, &evTime, &p.Error, &p.Attempts, &parkedAt); err != nil {
		return Parked{}, err
	}
	p.Position = Position(pos)
	md = mdNull.String
	if mdNull.Valid && md != "" {
		if err := json.Unmarshal([]byte(md), &p.Metadata); err != nil {
			return Parked{}, fmt.Errorf("parked event %s at sequence %d: metadata: %w", p.Stream, p.Sequence, err)
		}
	}
	var err error
	if p.Time, err = time.Parse(time.RFC3339Nano, evTime); err != nil {
		return Parked{}, fmt.Errorf("parked event %s at sequence %d: event time: %w", p.Stream, p.Sequence, err)
	}
	if p.ParkedAt, err = time.Parse(time.RFC3339Nano, parkedAt); err != nil {
		return Parked{}, fmt.Errorf("parked event %s at sequence %d: parked time: %w", p.Stream, p.Sequence, err)
	}
	if p.Data == nil {
		p.Data = []byte{}
	}
	return p, nil
}

// Active returns the active version of name ("" if none).
func (s *SQLStore) Active(ctx context.Context, name string) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT version FROM `+s.t.active+` WHERE name = ?`), name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("projection %s: active version: %w", name, err)
	}
	return v, nil
}

// Activate makes id.Version the active version of id.Name.
func (s *SQLStore) Activate(ctx context.Context, id ID) error {
	if err := id.Validate(); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO `+s.t.active+` (name, version, updated) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET version = excluded.version, updated = excluded.updated`), id.Name, id.Version, now())
	if err != nil {
		return fmt.Errorf("projection %s: activate: %w", id, err)
	}
	return nil
}

// Delete removes id's checkpoint, sequences and parked events in one
// transaction.
func (s *SQLStore) Delete(ctx context.Context, id ID) error {
	if err := id.Validate(); err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("projection %s: delete: %w", id, err)
	}
	defer tx.Rollback()
	for _, t := range []string{s.t.checkpoints, s.t.streams, s.t.parked} {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM `+t+` WHERE name = ? AND version = ?`), id.Name, id.Version); err != nil {
			return fmt.Errorf("projection %s: delete from %s: %w", id, t, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("projection %s: delete: %w", id, err)
	}
	return nil
}

type sqlTx struct {
	s       *SQLStore
	id      ID
	tx      *sql.Tx
	applied map[es.StreamID]int64
	done    bool
}

func (t *sqlTx) Handle() any { return t.tx }

func (t *sqlTx) Checkpoint(ctx context.Context) (Position, error) {
	if t.done {
		return "", ErrTxDone
	}
	var pos string
	err := t.tx.QueryRowContext(ctx, t.s.q(`INSERT INTO `+t.s.t.checkpoints+` (name, version, position, updated) VALUES (?, ?, '', ?)
		ON CONFLICT (name, version) DO UPDATE SET updated = excluded.updated RETURNING position`),
		t.id.Name, t.id.Version, now()).Scan(&pos)
	if err != nil {
		return "", fmt.Errorf("projection %s: checkpoint: %w", t.id, err)
	}
	return Position(pos), nil
}

// Sequences reads the sequences of streams, 200 streams per query.
func (t *sqlTx) Sequences(ctx context.Context, streams []es.StreamID) (map[es.StreamID]int64, error) {
	if t.done {
		return nil, ErrTxDone
	}
	out := make(map[es.StreamID]int64, len(streams))
	const chunk = 200
	for len(streams) > 0 {
		n := min(len(streams), chunk)
		part := streams[:n]
		streams = streams[n:]
		var b strings.Builder
		b.WriteString(`SELECT aggregate_type, stream_key, sequence FROM ` + t.s.t.streams +
			` WHERE name = ? AND version = ? AND (aggregate_type, stream_key) IN (VALUES `)
		args := make([]any, 0, 2+2*len(part))
		args = append(args, t.id.Name, t.id.Version)
		for i, s := range part {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?)")
			args = append(args, s.AggregateType, s.Key)
		}
		b.WriteString(")")
		rows, err := t.tx.QueryContext(ctx, t.s.q(b.String()), args...)
		if err != nil {
			return nil, fmt.Errorf("projection %s: read stream sequences: %w", t.id, err)
		}
		for rows.Next() {
			var s es.StreamID
			var seq int64
			if err := rows.Scan(&s.AggregateType, &s.Key, &seq); err != nil {
				rows.Close()
				return nil, fmt.Errorf("projection %s: read stream sequences: %w", t.id, err)
			}
			out[s] = seq
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("projection %s: read stream sequences: %w", t.id, err)
		}
	}
	return out, nil
}

func (t *sqlTx) Applied(stream es.StreamID, seq int64) {
	if !t.done {
		t.applied[stream] = seq
	}
}

func (t *sqlTx) Park(ctx context.Context, p Parked) error {
	if t.done {
		return ErrTxDone
	}
	var md sql.NullString
	if len(p.Metadata) > 0 {
		b, err := json.Marshal(p.Metadata)
		if err != nil {
			return fmt.Errorf("projection %s: park: metadata: %w", t.id, err)
		}
		md = sql.NullString{String: string(b), Valid: true}
	}
	data := p.Data
	if data == nil {
		data = []byte{}
	}
	_, err := t.tx.ExecContext(ctx, t.s.q(`INSERT INTO `+t.s.t.parked+` (name, version, `+parkedColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (name, version, aggregate_type, stream_key, sequence) DO UPDATE SET
			error = excluded.error, attempts = excluded.attempts, parked_at = excluded.parked_at`),
		t.id.Name, t.id.Version, p.Stream.AggregateType, p.Stream.Key, p.Sequence, p.CommitID, string(p.Position),
		p.Type, data, md, p.Time.UTC().Format(time.RFC3339Nano), p.Error, p.Attempts, p.ParkedAt.UTC().Format(time.RFC3339Nano))
	if err != nil {
		return fmt.Errorf("projection %s: park %s at sequence %d: %w", t.id, p.Stream, p.Sequence, err)
	}
	return nil
}

func (t *sqlTx) Unpark(ctx context.Context, stream es.StreamID, seq int64) (Parked, error) {
	if t.done {
		return Parked{}, ErrTxDone
	}
	row := t.tx.QueryRowContext(ctx, t.s.q(`DELETE FROM `+t.s.t.parked+`
		WHERE name = ? AND version = ? AND aggregate_type = ? AND stream_key = ? AND sequence = ? RETURNING `+parkedColumns),
		t.id.Name, t.id.Version, stream.AggregateType, stream.Key, seq)
	p, err := scanParked(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Parked{}, fmt.Errorf("%w: %s at sequence %d", ErrNotParked, stream, seq)
	}
	if err != nil {
		return Parked{}, fmt.Errorf("projection %s: unpark %s at sequence %d: %w", t.id, stream, seq, err)
	}
	return p, nil
}

// Commit writes the noted sequences and the checkpoint, then commits.
func (t *sqlTx) Commit(ctx context.Context, pos Position) error {
	if t.done {
		return ErrTxDone
	}
	if err := t.commit(ctx, pos); err != nil {
		t.done = true
		t.tx.Rollback()
		return err
	}
	return nil
}

func (t *sqlTx) commit(ctx context.Context, pos Position) error {
	const chunk = 100
	rows := make([]any, 0, 5*min(len(t.applied), chunk))
	flush := func() error {
		if len(rows) == 0 {
			return nil
		}
		var b strings.Builder
		b.WriteString(`INSERT INTO ` + t.s.t.streams + ` (name, version, aggregate_type, stream_key, sequence) VALUES `)
		for i := 0; i < len(rows)/5; i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?, ?, ?)")
		}
		b.WriteString(` ON CONFLICT (name, version, aggregate_type, stream_key) DO UPDATE SET sequence = excluded.sequence`)
		if _, err := t.tx.ExecContext(ctx, t.s.q(b.String()), rows...); err != nil {
			return fmt.Errorf("projection %s: store stream sequences: %w", t.id, err)
		}
		rows = rows[:0]
		return nil
	}
	for s, seq := range t.applied {
		rows = append(rows, t.id.Name, t.id.Version, s.AggregateType, s.Key, seq)
		if len(rows) == 5*chunk {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	res, err := t.tx.ExecContext(ctx, t.s.q(`UPDATE `+t.s.t.checkpoints+` SET position = ?, updated = ? WHERE name = ? AND version = ?`),
		string(pos), now(), t.id.Name, t.id.Version)
	if err != nil {
		return fmt.Errorf("projection %s: store the checkpoint: %w", t.id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n != 1 {
		return fmt.Errorf("projection %s: store the checkpoint: %w (its row is gone)", t.id, ErrCheckpointMoved)
	}
	t.done = true
	if err := t.tx.Commit(); err != nil {
		return fmt.Errorf("projection %s: commit: %w", t.id, err)
	}
	return nil
}

func (t *sqlTx) Rollback() error {
	if t.done {
		return ErrTxDone
	}
	t.done = true
	return t.tx.Rollback()
}
