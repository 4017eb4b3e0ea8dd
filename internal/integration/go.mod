module github.com/aggregatekit/eventsourcing/internal/integration

go 1.26.0

require (
	github.com/aggregatekit/eventsourcing v0.0.0-00010101000000-000000000000
	github.com/aggregatekit/eventsourcing/middleware/publish/natsjs v0.0.0-00010101000000-000000000000
	github.com/aggregatekit/eventsourcing/middleware/telemetry v0.0.0-00010101000000-000000000000
	github.com/aggregatekit/eventsourcing/stores/dynamostore v0.0.0-00010101000000-000000000000
	github.com/aggregatekit/eventsourcing/stores/mongostore v0.0.0-00010101000000-000000000000
	github.com/aggregatekit/eventsourcing/stores/pgstore v0.0.0-00010101000000-000000000000
	github.com/aggregatekit/eventsourcing/stores/redisstore v0.0.0-00010101000000-000000000000
	github.com/aggregatekit/eventsourcing/stores/sqlitestore v0.0.0-00010101000000-000000000000
	github.com/aws/aws-sdk-go-v2 v1.47.7
	github.com/aws/aws-sdk-go-v2/service/dynamodb v1.73.1
	github.com/nats-io/nats.go v1.55.0
	github.com/redis/go-redis/v9 v9.23.0
	go.mongodb.org/mongo-driver/v2 v2.10.0
	go.opentelemetry.io/otel/sdk v1.47.0
	go.opentelemetry.io/otel/sdk/metric v1.47.0
)

require (
	github.com/dustin/go-humanize v1.1.0 // indirect
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	github.com/jackc/pgx/v5 v5.12.0 // indirect
	github.com/jackc/puddle/v2 v2.2.3 // indirect
	github.com/mattn/go-isatty v0.0.24 // indirect
	github.com/ncruces/go-strftime v1.1.0 // indirect
	github.com/remyoudompheng/bigfft v0.0.0-20230129092748-24d4a6f8daec // indirect
	modernc.org/libc v1.80.1 // indirect
	modernc.org/mathutil v1.7.1 // indirect
	modernc.org/memory v1.12.1 // indirect
	modernc.org/sqlite v1.62.0 // indirect
)

require (
	github.com/aws/aws-sdk-go-v2/credentials v1.20.15 // indirect
	github.com/aws/aws-sdk-go-v2/internal/configsources v1.5.10 // indirect
	github.com/aws/aws-sdk-go-v2/internal/endpoints/v2 v2.8.10 // indirect
	github.com/aws/aws-sdk-go-v2/service/internal/accept-encoding v1.13.24 // indirect
	github.com/aws/aws-sdk-go-v2/service/internal/endpoint-discovery v1.13.10 // indirect
	github.com/aws/smithy-go v1.28.8 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/go-logr/logr v1.4.4 // indirect
	github.com/go-logr/stdr v1.2.2 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/nats-io/nkeys v0.4.16 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	github.com/xdg-go/scram v1.4.0 // indirect
	github.com/xdg-go/stringprep v1.0.4 // indirect
	github.com/youmark/pkcs8 v0.0.0-20240726163527-a2c0da244d78 // indirect
	go.opentelemetry.io/auto/sdk v1.2.1 // indirect
	go.opentelemetry.io/otel v1.47.0 // indirect
	go.opentelemetry.io/otel/log v1.47.0 // indirect
	go.opentelemetry.io/otel/metric v1.47.0 // indirect
	go.opentelemetry.io/otel/trace v1.47.0 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/crypto v0.57.0 // indirect
	golang.org/x/sync v0.24.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.42.0 // indirect
)

replace (
	github.com/aggregatekit/eventsourcing => ../..
	github.com/aggregatekit/eventsourcing/middleware/publish/natsjs => ../../middleware/publish/natsjs
	github.com/aggregatekit/eventsourcing/middleware/telemetry => ../../middleware/telemetry
	github.com/aggregatekit/eventsourcing/stores/dynamostore => ../../stores/dynamostore
	github.com/aggregatekit/eventsourcing/stores/mongostore => ../../stores/mongostore
	github.com/aggregatekit/eventsourcing/stores/pgstore => ../../stores/pgstore
	github.com/aggregatekit/eventsourcing/stores/redisstore => ../../stores/redisstore
	github.com/aggregatekit/eventsourcing/stores/sqlitestore => ../../stores/sqlitestore
)
