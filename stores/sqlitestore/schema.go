package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
)

// SchemaVersion is the version of the tables this package creates and
// reads, recorded in the table es_schema. A database of a newer version is
// refused with ErrSchemaVersion, and one of an older version is upgraded
// when it is opened.
const SchemaVersion = 1

// schemaName is the row of es_schema that holds this package's version,
// so that the table can record other components' versions beside it.
const schemaName = "eventsourcing"

// schema creates the tables of version 1. Every statement is idempotent.
// STRICT tables make SQLite refuse a value of the wrong type written by
// anything else, so rows read back have the types the store wrote.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS es_schema (
		name    TEXT PRIMARY KEY,
		version INTEGER NOT NULL
	) STRICT, WITHOUT ROWID`,
	// One row per event. position (the rowid) is the feed order: the single
	// writer assigns it max+1, so a commit's events are consecutive and
	// positions grow in commit order.
	`CREATE TABLE IF NOT EXISTS es_events (
		position       INTEGER PRIMARY KEY,
		aggregate_type TEXT    NOT NULL,
		aggregate_key  TEXT    NOT NULL,
		sequence       INTEGER NOT NULL,
		commit_first   INTEGER NOT NULL,
		commit_last    INTEGER NOT NULL,
		commit_id      TEXT    NOT NULL,
		event_type     TEXT    NOT NULL,
		data           BLOB    NOT NULL,
		time           TEXT    NOT NULL,
		metadata       TEXT,
		UNIQUE (aggregate_type, aggregate_key, sequence)
	) STRICT`,
	`CREATE TABLE IF NOT EXISTS es_snapshots (
		aggregate_type TEXT    NOT NULL,
		aggregate_key  TEXT    NOT NULL,
		sequence       INTEGER NOT NULL,
		version        INTEGER NOT NULL,
		state          BLOB    NOT NULL,
		time           TEXT    NOT NULL,
		PRIMARY KEY (aggregate_type, aggregate_key)
	) STRICT`,
	`CREATE TABLE IF NOT EXISTS es_checkpoints (
		name     TEXT PRIMARY KEY,
		position TEXT NOT NULL
	) STRICT, WITHOUT ROWID`,
}

// readVersion returns the schema version recorded in the database, 0 if
// the event store's tables were never created.
func readVersion(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int64, error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'es_schema'`).Scan(&n); err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, nil
	}
	var v any
	err := q.QueryRowContext(ctx, `SELECT version FROM es_schema WHERE name = ?`, schemaName).Scan(&v)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	version, ok := v.(int64)
	if !ok || version < 1 {
		return 0, fmt.Errorf("%w: es_schema holds version %v", ErrSchemaVersion, v)
	}
	return version, nil
}

func checkVersion(v int64) error {
	if v > SchemaVersion {
		return fmt.Errorf("%w: the database holds schema version %d, newer than version %d that this package reads; upgrade github.com/aggregatekit/eventsourcing/stores/sqlitestore",
			ErrSchemaVersion, v, SchemaVersion)
	}
	return nil
}

// migrate creates the tables (or upgrades older ones) inside the write
// transaction tx, and records SchemaVersion.
func migrate(ctx context.Context, tx *sql.Tx) error {
	v, err := readVersion(ctx, tx)
	if err != nil {
		return err
	}
	if err := checkVersion(v); err != nil {
		return err
	}
	if v == SchemaVersion {
		return nil
	}
	for _, stmt := range schema {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO es_schema (name, version) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET version = excluded.version`, schemaName, SchemaVersion)
	return err
}
