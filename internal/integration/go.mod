module github.com/aggregatekit/eventsourcing/internal/integration

go 1.26.0

require (
	github.com/aggregatekit/eventsourcing v0.0.0-00010101000000-000000000000
	github.com/aggregatekit/eventsourcing/stores/dynamostore v0.0.0-00010101000000-000000000000
	github.com/aggregatekit/eventsourcing/stores/mongostore v0.0.0-00010101000000-000000000000
	github.com/aggregatekit/eventsourcing/stores/redisstore v0.0.0-00010101000000-000000000000
	github.com/aggregatekit/eventsourcing/middleware/publish/natsjs v0.0.0-00010101000000-000000000000
	github.com/aws/aws-sdk-go-v2 v1.47.7
	github.com/aws/aws-sdk-go-v2/credentials v1.20.15
	github.com/aws/aws-sdk-go-v2/service/dynamodb v1.73.1
	github.com/redis/go-redis/v9 v9.23.0
	go.mongodb.org/mongo-driver/v2 v2.10.0
)

replace (
	github.com/aggregatekit/eventsourcing => ../..
	github.com/aggregatekit/eventsourcing/middleware/publish/natsjs => ../../middleware/publish/natsjs
	github.com/aggregatekit/eventsourcing/stores/dynamostore => ../../stores/dynamostore
	github.com/aggregatekit/eventsourcing/stores/mongostore => ../../stores/mongostore
	github.com/aggregatekit/eventsourcing/stores/redisstore => ../../stores/redisstore
)
