package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/middleware/logging"
	"github.com/aggregatekit/eventsourcing/middleware/snapshot"
	"github.com/aggregatekit/eventsourcing/stores/dynamodb"
	"github.com/aggregatekit/eventsourcing/stores/memory"
	"github.com/aggregatekit/eventsourcing/stores/mongo"
)

// openStore opens the event store cfg names, wrapped in the logging
// middleware and, if cfg.SnapshotEvery > 0, the snapshot middleware. It
// returns the store with the function that closes it and everything it
// opened. This is the only file that knows about concrete stores.
func openStore(ctx context.Context, cfg config, log *slog.Logger) (es.EventStore, func() error, error) {
	store, snapshots, err := openBackend(ctx, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the %s store: %w", cfg.Store, err)
	}
	logs, err := logging.NewSlog(log)
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	middleware := []es.Middleware{logs} // outermost: its durations cover the snapshots too
	if cfg.SnapshotEvery > 0 {
		snaps, err := snapshot.New(snapshots, snapshot.EveryN(cfg.SnapshotEvery), snapshot.WithLogger(log))
		if err != nil {
			store.Close()
			return nil, nil, err
		}
		middleware = append(middleware, snaps)
	}
	store = es.Wrap(store, middleware...)
	return store, store.Close, nil
}

// openBackend opens the event store and the snapshot store of cfg.Store.
// Closing the event store releases everything: the snapshot stores share its
// connection.
func openBackend(ctx context.Context, cfg config) (es.EventStore, es.SnapshotStore, error) {
	switch cfg.Store {
	case "memory":
		return es.NewStore(memory.NewBackend()), memory.NewSnapshotStore(), nil

	case "mongo":
		backend, err := mongo.Open(ctx, cfg.MongoURI, cfg.MongoDatabase, "events") // owns the connection
		if err != nil {
			return nil, nil, err
		}
		snaps, err := mongo.NewSnapshotStore(backend.Client(), cfg.MongoDatabase, "snapshots")
		if err != nil {
			backend.Close()
			return nil, nil, err
		}
		return es.NewStore(backend), snaps, nil

	case "dynamodb":
		client, err := dynamoClient(ctx, cfg)
		if err != nil {
			return nil, nil, err
		}
		if cfg.DynamoCreate {
			if err := dynamodb.CreateTable(ctx, client, cfg.DynamoTable); err != nil { // no-op if it exists
				return nil, nil, err
			}
		}
		store, err := dynamodb.NewStore(ctx, client, cfg.DynamoTable)
		if err != nil {
			return nil, nil, err
		}
		snaps, err := dynamodb.NewSnapshotStore(ctx, client, cfg.DynamoTable) // shares the event table
		if err != nil {
			store.Close()
			return nil, nil, err
		}
		return store, snaps, nil
	}
	return nil, nil, fmt.Errorf("unknown store %q", cfg.Store)
}

// dynamoClient returns a DynamoDB client configured the AWS way
// (environment, ~/.aws), for cfg's region and, if set, endpoint. A local
// DynamoDB (dynalite, DynamoDB Local) accepts any credentials, so with an
// endpoint and no AWS_ACCESS_KEY_ID, placeholder credentials are used.
func dynamoClient(ctx context.Context, cfg config) (*ddb.Client, error) {
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(cfg.DynamoRegion)}
	if cfg.DynamoEndpoint != "" && os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, err
	}
	return ddb.NewFromConfig(awsCfg, func(o *ddb.Options) {
		if cfg.DynamoEndpoint != "" {
			o.BaseEndpoint = aws.String(cfg.DynamoEndpoint)
		}
	}), nil
}
