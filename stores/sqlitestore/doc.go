// Package sqlitestore stores events in SQLite.
package sqlitestore
