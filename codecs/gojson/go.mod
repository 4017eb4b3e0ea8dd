module github.com/aggregatekit/eventsourcing/codecs/gojson

go 1.26.0

require (
	github.com/aggregatekit/eventsourcing v0.0.0-00010101000000-000000000000
	github.com/goccy/go-json v0.10.5
)

replace github.com/aggregatekit/eventsourcing => ../..
