module github.com/aggregatekit/eventsourcing/tools/bench/peers

go 1.26.0

require (
	github.com/aggregatekit/eventsourcing v0.0.0-00010101000000-000000000000
	github.com/google/uuid v1.6.0
	github.com/hallgren/eventsourcing v0.9.1
	github.com/looplab/eventhorizon v0.17.0
	github.com/modernice/goes v0.9.0
)

require (
	github.com/hallgren/eventsourcing/core v0.5.2 // indirect
	github.com/jinzhu/copier v0.3.4 // indirect
	golang.org/x/exp v0.0.0-20231006140011-7918f672742d // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260414002931-afd174a4e478 // indirect
	google.golang.org/protobuf v1.36.11 // indirect
)

replace github.com/aggregatekit/eventsourcing => ../../..
