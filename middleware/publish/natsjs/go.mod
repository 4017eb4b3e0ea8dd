module github.com/aggregatekit/eventsourcing/middleware/publish/natsjs

go 1.26.0

require (
	github.com/aggregatekit/eventsourcing v0.0.0-00010101000000-000000000000
	github.com/nats-io/nats.go v1.55.0
)

replace github.com/aggregatekit/eventsourcing => ../../..
