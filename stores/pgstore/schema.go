package pgstore

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SchemaVersion is the version of the tables this release of the package
// reads and writes. EnsureSchema records it in the schema's schema_version
// table; construction refuses a schema recording another version.
const SchemaVersion = 1

var (
	// ErrSchemaMissing reports that the store's schema, or one of its
	// tables, does not exist: at construction with WithoutSchemaCreation,
	// or because it was dropped while a Backend ran.
	ErrSchemaMissing = errors.New("pgstore: schema missing")

	// ErrSchemaVersion reports a schema recording a version other than
	// SchemaVersion, or holding tables that pgstore did not create.
	ErrSchemaVersion = errors.New("pgstore: schema of another version")
)

// SQLSTATE codes the store tells apart.
const (
	codeUniqueViolation  = "23505"
	codeUndefinedTable   = "42P01"
	codeInvalidSchema    = "3F000"
	codeUndefinedColumn  = "42703"
	codeDatatypeMismatch = "42804"
)

// tables names the schema's tables, for the checks and the statements.
type tables struct {
	schema                             string // as given
	version, events, snapshots, points string // quoted and qualified, for SQL and for to_regclass
	channel                            string // NOTIFY channel
}

func newTables(schema string) tables {
	q := func(t string) string { return pgx.Identifier{schema, t}.Sanitize() }
	return tables{
		schema:    schema,
		version:   q("schema_version"),
		events:    q("events"),
		snapshots: q("snapshots"),
		points:    q("checkpoints"),
		channel:   channelName(schema),
	}
}

// channelName returns the NOTIFY channel of a schema: "pgstore." and the
// schema name, or, when that would exceed PostgreSQL's 63-byte identifiers,
// "pgstore." and a hash of the name.
func channelName(schema string) string {
	if c := "pgstore." + schema; len(c) <= 63 {
		return c
	}
	h := fnv.New64a()
	h.Write([]byte(schema))
	return "pgstore." + strconv.FormatUint(h.Sum64(), 16)
}

// ddl returns the statements that create version 1 of the schema.
func (t tables) ddl() []string {
	return []string{
		`CREATE SCHEMA IF NOT EXISTS ` + pgx.Identifier{t.schema}.Sanitize(),
		`CREATE TABLE IF NOT EXISTS ` + t.version + ` (
	one     boolean PRIMARY KEY DEFAULT true CHECK (one),
	version integer NOT NULL,
	created timestamptz NOT NULL DEFAULT now()
)`,
		`CREATE TABLE IF NOT EXISTS ` + t.events + ` (
	position   bigint GENERATED ALWAYS AS IDENTITY,
	tx         xid8 NOT NULL DEFAULT pg_current_xact_id(),
	aggregate  text NOT NULL,
	key        text NOT NULL,
	seq        bigint NOT NULL,
	commit_id  text NOT NULL,
	event_type text NOT NULL,
	data       bytea NOT NULL,
	time       timestamptz NOT NULL,
	time_ns    smallint NOT NULL DEFAULT 0,
	metadata   bytea,
	CONSTRAINT events_pkey PRIMARY KEY (aggregate, key, seq)
)`,
		`CREATE UNIQUE INDEX IF NOT EXISTS events_feed ON ` + t.events + ` (tx, position)`,
		`CREATE TABLE IF NOT EXISTS ` + t.snapshots + ` (
	aggregate text NOT NULL,
	key       text NOT NULL,
	seq       bigint NOT NULL,
	version   bigint NOT NULL,
	state     bytea NOT NULL,
	time      timestamptz NOT NULL,
	time_ns   smallint NOT NULL DEFAULT 0,
	PRIMARY KEY (aggregate, key)
)`,
		`CREATE TABLE IF NOT EXISTS ` + t.points + ` (
	name     text PRIMARY KEY,
	position text NOT NULL,
	updated  timestamptz NOT NULL DEFAULT now()
)`,
		`INSERT INTO ` + t.version + ` (version) VALUES (` + strconv.Itoa(SchemaVersion) + `) ON CONFLICT (one) DO NOTHING`,
	}
}

// EnsureSchema creates the store's schema and tables (see the package
// documentation) unless they exist, and checks that the schema is of
// SchemaVersion. It is idempotent and safe to run at every start and from
// any number of processes at once: when everything exists it costs one
// query and takes no lock; otherwise it creates what is missing in one
// transaction holding a transaction-scoped advisory lock derived from the
// schema name, so that concurrent creators wait for each other instead of
// colliding in PostgreSQL's catalogs. NewBackend, Open and NewSnapshotStore
// call it; call it yourself to create the schema ahead of a deployment (as
// a role that may run DDL), then construct with WithoutSchemaCreation.
//
// With WithoutSchemaCreation it only verifies. Errors match ErrSchemaMissing
// or ErrSchemaVersion when the schema is missing or of another version.
func EnsureSchema(ctx context.Context, pool *pgxpool.Pool, opts ...Option) error {
	if pool == nil {
		return errors.New("pgstore: nil pool")
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return err
	}
	return ensureSchema(ctx, pool, newTables(cfg.schema), cfg.create)
}

// prepare checks the pool, reads the options and makes sure the schema they
// name exists and is current (see ensureSchema): what NewBackend and
// NewSnapshotStore both do first.
func prepare(ctx context.Context, pool *pgxpool.Pool, opts []Option) (config, tables, error) {
	if pool == nil {
		return config{}, tables{}, errors.New("pgstore: nil pool")
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return config{}, tables{}, err
	}
	t := newTables(cfg.schema)
	if err := ensureSchema(ctx, pool, t, cfg.create); err != nil {
		return config{}, tables{}, err
	}
	return cfg, t, nil
}

func ensureSchema(ctx context.Context, pool *pgxpool.Pool, t tables, create bool) error {
	err := checkSchema(ctx, pool, t)
	if err == nil || !create || !errors.Is(err, ErrSchemaMissing) {
		return err
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: create schema %q: %w", t.schema, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`,
		"github.com/aggregatekit/eventsourcing/stores/pgstore schema "+t.schema); err != nil {
		return fmt.Errorf("pgstore: create schema %q: lock: %w", t.schema, err)
	}
	// Under the lock: another process may have created it meanwhile. A
	// schema that has our tables but no version record was not made by
	// EnsureSchema: refuse to adopt it.
	var hasVersion, hasOther bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL,
	to_regclass($2) IS NOT NULL OR to_regclass($3) IS NOT NULL OR to_regclass($4) IS NOT NULL`,
		t.version, t.events, t.snapshots, t.points).Scan(&hasVersion, &hasOther); err != nil {
		return fmt.Errorf("pgstore: create schema %q: %w", t.schema, err)
	}
	if !hasVersion && hasOther {
		return fmt.Errorf("%w: schema %q holds tables named like pgstore's but no schema_version table: not created by pgstore", ErrSchemaVersion, t.schema)
	}
	for _, stmt := range t.ddl() {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("pgstore: create schema %q: %w", t.schema, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgstore: create schema %q: commit: %w", t.schema, err)
	}
	return checkSchema(ctx, pool, t)
}

// checkSchema verifies, in one query, that every table exists and that the
// recorded version is SchemaVersion.
func checkSchema(ctx context.Context, pool *pgxpool.Pool, t tables) error {
	var version int
	var events, snaps, points bool
	err := pool.QueryRow(ctx, `SELECT v.version, to_regclass($1) IS NOT NULL, to_regclass($2) IS NOT NULL, to_regclass($3) IS NOT NULL
FROM `+t.version+` v`, t.events, t.snapshots, t.points).Scan(&version, &events, &snaps, &points)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("%w: schema %q has no version record in its schema_version table", ErrSchemaMissing, t.schema)
	case isCode(err, codeUndefinedTable, codeInvalidSchema):
		return fmt.Errorf("%w: schema %q or its table schema_version does not exist: %w", ErrSchemaMissing, t.schema, err)
	case isCode(err, codeUndefinedColumn, codeDatatypeMismatch):
		return fmt.Errorf("%w: schema %q has a schema_version table pgstore cannot read: %w", ErrSchemaVersion, t.schema, err)
	case err != nil:
		return fmt.Errorf("pgstore: check schema %q: %w", t.schema, err)
	}
	if version != SchemaVersion {
		return fmt.Errorf("%w: schema %q is at version %d; this release of pgstore reads and writes version %d",
			ErrSchemaVersion, t.schema, version, SchemaVersion)
	}
	var missing []string
	for _, m := range []struct {
		ok   bool
		name string
	}{{events, "events"}, {snaps, "snapshots"}, {points, "checkpoints"}} {
		if !m.ok {
			missing = append(missing, m.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: schema %q lacks table(s) %s", ErrSchemaMissing, t.schema, strings.Join(missing, ", "))
	}
	return nil
}

// isCode reports whether err is a PostgreSQL error with one of the given
// SQLSTATE codes.
func isCode(err error, codes ...string) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	for _, c := range codes {
		if pe.Code == c {
			return true
		}
	}
	return false
}

// schemaError classifies a PostgreSQL error that says the schema is not
// what the statements expect; nil otherwise.
func (t tables) schemaError(err error) error {
	switch {
	case isCode(err, codeUndefinedTable, codeInvalidSchema):
		return fmt.Errorf("%w: schema %q: %w", ErrSchemaMissing, t.schema, err)
	case isCode(err, codeUndefinedColumn, codeDatatypeMismatch):
		return fmt.Errorf("%w: schema %q: %w", ErrSchemaVersion, t.schema, err)
	}
	return nil
}
