package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/aggregatekit/eventsourcing/backend"
)

// Errors of this package. They describe what went wrong with the database
// file itself; the outcomes of the store contract (a conflict, a closed
// store, a commit too large, corrupt data) match the sentinels of package
// backend (re-exported by the root package eventsourcing). Each is wrapped
// with the operation, the file or stream, and SQLite's own error.
var (
	// ErrNotDatabase reports a file that is not an SQLite database (or is
	// encrypted). The file is left as it is.
	ErrNotDatabase = errors.New("sqlitestore: file is not an SQLite database")

	// ErrSchemaVersion reports a database whose event store tables were
	// created by a newer version of this package (or hold a version it
	// cannot read). Nothing is changed: upgrade the package.
	ErrSchemaVersion = errors.New("sqlitestore: unsupported schema version")

	// ErrLocked reports that another connection or process held a lock on
	// the database for longer than the busy timeout (see WithBusyTimeout):
	// a writer in another process, or one that holds an exclusive lock
	// (PRAGMA locking_mode=EXCLUSIVE). Nothing was stored.
	ErrLocked = errors.New("sqlitestore: database is locked by another connection or process")

	// ErrFull reports a write refused because the disk is full, or the
	// database reached its maximum size (PRAGMA max_page_count). Nothing
	// was stored, and the database is intact.
	ErrFull = errors.New("sqlitestore: database or disk is full")

	// ErrCannotOpen reports a database file that cannot be opened or
	// created: a missing directory, a directory or file without
	// permission, a read-only file system.
	ErrCannotOpen = errors.New("sqlitestore: cannot open or create the database file")

	// ErrReadOnly reports a database that can be read but not written (a
	// read-only file, or a directory where SQLite cannot create the
	// write-ahead log). Nothing was stored.
	ErrReadOnly = errors.New("sqlitestore: database is read-only")
)

// sqliteCode returns SQLite's primary result code of err, or 0.
func sqliteCode(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() & 0xff
	}
	return 0
}

// kindOf returns the sentinel of this package (or of package backend) that
// err's SQLite result code maps to, or nil.
func kindOf(err error) error {
	switch sqliteCode(err) {
	case sqlite3.SQLITE_NOTADB:
		return ErrNotDatabase
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return ErrLocked
	case sqlite3.SQLITE_FULL:
		return ErrFull
	case sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_AUTH:
		return ErrCannotOpen
	case sqlite3.SQLITE_READONLY:
		return ErrReadOnly
	}
	return nil
}

// isBusy reports whether err is SQLite's "database is locked".
func isBusy(err error) bool {
	c := sqliteCode(err)
	return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
}

// wrap returns err described as the failure of op ("append to Counter/x",
// "open /data/app.db"): context errors stay matchable, a closed database
// matches backend.ErrClosed, and SQLite's result codes match this
// package's sentinels.
func (b *Backend) wrap(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if b != nil && b.closed.Load() {
		return fmt.Errorf("sqlitestore: %s: %w", op, backend.ErrClosed)
	}
	return wrapErr(ctx, op, err)
}

func wrapErr(ctx context.Context, op string, err error) error {
	if ce := ctx.Err(); ce != nil && !errors.Is(err, ce) {
		return fmt.Errorf("sqlitestore: %s: %w: %w", op, ce, err)
	}
	if errors.Is(err, sql.ErrConnDone) || err.Error() == "sql: database is closed" {
		return fmt.Errorf("sqlitestore: %s: %w: %w", op, backend.ErrClosed, err)
	}
	if k := kindOf(err); k != nil {
		return fmt.Errorf("%w: %s: %w", k, op, err)
	}
	return fmt.Errorf("sqlitestore: %s: %w", op, err)
}
