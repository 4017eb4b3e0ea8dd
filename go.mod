module github.com/aggregatekit/eventsourcing

go 1.26.0
