module github.com/aggregatekit/eventsourcing/examples/counter

go 1.26.0

require (
	github.com/aggregatekit/eventsourcing v0.0.0-00010101000000-000000000000
	github.com/aggregatekit/eventsourcing/stores/dynamostore v0.0.0-00010101000000-000000000000
	github.com/aggregatekit/eventsourcing/stores/mongostore v0.0.0-00010101000000-000000000000
	github.com/aws/aws-sdk-go-v2 v1.47.7
	github.com/aws/aws-sdk-go-v2/config v1.33.15
	github.com/aws/aws-sdk-go-v2/credentials v1.20.15
	github.com/aws/aws-sdk-go-v2/service/dynamodb v1.73.1
	github.com/gin-gonic/gin v1.12.0
)

replace (
	github.com/aggregatekit/eventsourcing => ../..
	github.com/aggregatekit/eventsourcing/stores/dynamostore => ../../stores/dynamostore
	github.com/aggregatekit/eventsourcing/stores/mongostore => ../../stores/mongostore
)
