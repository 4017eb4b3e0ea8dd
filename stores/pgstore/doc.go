// Package pgstore stores events and snapshots in PostgreSQL.
package pgstore
