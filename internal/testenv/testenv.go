// Package testenv finds the real servers that tests of the database-backed
// packages need. `make test` starts them and sets the variables; a plain
// `go test ./...` without them skips those tests with a message saying how to
// run them. With EVENTSOURCING_REQUIRE_SERVERS=1 (set by `make test`) a
// missing variable fails the test instead, so a broken setup never passes
// silently.
package testenv

import (
	"os"
	"testing"
)

// Variables naming the test servers.
const (
	MongoURI         = "EVENTSOURCING_MONGO_URI"
	DynamoDBEndpoint = "EVENTSOURCING_DYNAMODB_ENDPOINT"
	RedisAddr        = "EVENTSOURCING_REDIS_ADDR"
	NATSURL          = "EVENTSOURCING_NATS_URL"
	RequireServers   = "EVENTSOURCING_REQUIRE_SERVERS"
)

// Get returns the value of the environment variable name. If it is unset,
// the test fails when servers are required and is skipped otherwise.
func Get(tb testing.TB, name string) string {
	tb.Helper()
	if v := os.Getenv(name); v != "" {
		return v
	}
	msg := name + " is not set: run `make test`, which starts the test servers, or start one yourself (see scripts/README.md) and set " + name
	if os.Getenv(RequireServers) != "" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
	return ""
}
