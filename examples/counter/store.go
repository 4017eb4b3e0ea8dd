package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/middleware/logging"
	"github.com/aggregatekit/eventsourcing/middleware/snapshot"
	"github.com/aggregatekit/eventsourcing/stores/dynamostore"
	"github.com/aggregatekit/eventsourcing/stores/memory"
	"github.com/aggregatekit/eventsourcing/stores/mongostore"
	"github.com/aggregatekit/eventsourcing/stores/pgstore"
	"github.com/aggregatekit/eventsourcing/stores/sqlitestore"
)

// stack is the event store of the server: a backend, wrapped in the
// logging middleware and, if enabled, the snapshot middleware.
type stack struct {
	store   es.EventStore
	backend es.Backend // the backend under store, for its Feed and Checkpoints
	close   func() error
}

// openStore opens the event store cfg names, wrapped in the logging
// middleware and, if cfg.SnapshotEvery > 0, the snapshot middleware. Its
// close function closes it and everything it opened. This is the only file
// that knows about concrete stores.
func openStore(ctx context.Context, cfg config, log *slog.Logger) (*stack, error) {
	b, snapshots, err := openBackend(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("opening the %s store: %w", cfg.Store, err)
	}
	logs, err := logging.NewSlog(log)
	if err != nil {
		return nil, errors.Join(err, b.Close())
	}
	middleware := []es.Middleware{logs} // outermost: its durations cover the snapshots too
	if cfg.SnapshotEvery > 0 {
		snaps, err := snapshot.New(snapshots, snapshot.EveryN(cfg.SnapshotEvery), snapshot.WithLogger(log))
		if err != nil {
			return nil, errors.Join(err, b.Close())
		}
		middleware = append(middleware, snaps)
	}
	store := es.Wrap(es.NewStore(b), middleware...)
	return &stack{store: store, backend: b, close: store.Close}, nil
}

// openBackend opens the backend and the snapshot store of cfg.Store.
// Closing the backend releases everything: the snapshot stores share its
// connection or file.
func openBackend(ctx context.Context, cfg config) (es.Backend, es.SnapshotStore, error) {
	switch cfg.Store {
	case "sqlite":
		b, err := sqlitestore.Open(ctx, cfg.SQLitePath)
		if err != nil {
			return nil, nil, err
		}
		return b, sqlitestore.NewSnapshotStore(b), nil

	case "memory":
		return memory.NewBackend(), memory.NewSnapshotStore(), nil

	case "postgres":
		b, err := pgstore.Open(ctx, cfg.PostgresURL) // owns its connection pool
		if err != nil {
			return nil, nil, err
		}
		snaps, err := pgstore.NewSnapshotStore(ctx, b.Pool())
		if err != nil {
			return nil, nil, errors.Join(err, b.Close())
		}
		return b, snaps, nil

	case "mongo":
		b, err := mongostore.Open(ctx, cfg.MongoURI, cfg.MongoDatabase, "events") // owns the connection
		if err != nil {
			return nil, nil, err
		}
		snaps, err := mongostore.NewSnapshotStore(b.Client(), cfg.MongoDatabase, "snapshots")
		if err != nil {
			return nil, nil, errors.Join(err, b.Close())
		}
		return b, snaps, nil

	case "dynamodb":
		client, err := dynamoClient(ctx, cfg)
		if err != nil {
			return nil, nil, err
		}
		if cfg.DynamoCreate {
			if err := dynamostore.CreateTable(ctx, client, cfg.DynamoTable); err != nil { // no-op if it exists
				return nil, nil, err
			}
		}
		b, err := dynamostore.NewBackend(ctx, client, cfg.DynamoTable)
		if err != nil {
			return nil, nil, err
		}
		snaps, err := dynamostore.NewSnapshotStore(ctx, client, cfg.DynamoTable) // shares the event table
		if err != nil {
			return nil, nil, errors.Join(err, b.Close())
		}
		return b, snaps, nil
	}
	return nil, nil, fmt.Errorf("unknown store %q", cfg.Store)
}
