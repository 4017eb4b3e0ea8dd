// Package sqltest holds the tests of package projection's SQLStore
// against real databases: SQLite (modernc.org/sqlite, a file in a
// temporary directory) and PostgreSQL (the test server testkit names),
// with read models written in the runner's transaction, and projections
// over the PostgreSQL store's feed. It is a module of its own because the
// drivers are not in the standard library, which is all the root module
// may use. It has no API.
package sqltest
