module github.com/aggregatekit/eventsourcing/middleware/logging/logruslog

go 1.26.0

require (
	github.com/aggregatekit/eventsourcing v0.0.0-00010101000000-000000000000
	github.com/sirupsen/logrus v1.9.3
)

replace github.com/aggregatekit/eventsourcing => ../../..
