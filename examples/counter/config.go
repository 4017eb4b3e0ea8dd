package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// config is the example's configuration. Every field has a flag and, as a
// fallback, an environment variable named COUNTER_ plus the flag name in
// upper case with '-' as '_' (-mongo-uri: COUNTER_MONGO_URI). A flag given
// on the command line wins over the variable, which wins over the default.
type config struct {
	Addr            string
	Store           string // sqlite, memory, postgres, mongo or dynamodb
	SQLitePath      string
	PostgresURL     string
	MongoURI        string
	MongoDatabase   string
	DynamoEndpoint  string // empty: the AWS default for the region
	DynamoRegion    string
	DynamoTable     string
	DynamoCreate    bool // create the table at start-up if it is missing
	SnapshotEvery   int  // take a snapshot every N events; 0 disables snapshots
	LogLevel        slog.Level
	MaxCount        int64
	Cached          int // counters kept loaded in memory; 0: none
	RequestTimeout  time.Duration
	ShutdownTimeout time.Duration
}

// stores are the values of -store, the default first.
var stores = []string{"sqlite", "memory", "postgres", "mongo", "dynamodb"}

const envPrefix = "COUNTER_"

// parseConfig reads the configuration from the command-line arguments (without
// the program name) and the environment, through lookupEnv (os.LookupEnv in
// main). Usage and errors are written to output.
func parseConfig(args []string, lookupEnv func(string) (string, bool), output io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("counter", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "address to listen on")
	fs.StringVar(&c.Store, "store", "sqlite", "event store: "+strings.Join(stores, ", "))
	fs.StringVar(&c.SQLitePath, "sqlite-path", "counter.db", "SQLite database file, created if missing (-store sqlite)")
	fs.StringVar(&c.PostgresURL, "postgres-url", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "PostgreSQL connection URL (-store postgres)")
	fs.StringVar(&c.MongoURI, "mongo-uri", "mongodb://127.0.0.1:27017", "MongoDB connection URI (-store mongo)")
	fs.StringVar(&c.MongoDatabase, "mongo-database", "counter", "MongoDB database (-store mongo)")
	fs.StringVar(&c.DynamoEndpoint, "dynamodb-endpoint", "", "DynamoDB endpoint URL, e.g. http://127.0.0.1:8000 for a local server; empty for AWS (-store dynamodb)")
	fs.StringVar(&c.DynamoRegion, "dynamodb-region", "us-east-1", "AWS region (-store dynamodb)")
	fs.StringVar(&c.DynamoTable, "dynamodb-table", "counter_events", "DynamoDB table (-store dynamodb)")
	fs.BoolVar(&c.DynamoCreate, "dynamodb-create-table", true, "create the DynamoDB table at start-up if it is missing; needs the dynamodb:CreateTable permission (-store dynamodb)")
	fs.IntVar(&c.SnapshotEvery, "snapshot-every", 100, "take a snapshot every N events; 0 disables snapshots")
	fs.TextVar(&c.LogLevel, "log-level", slog.LevelInfo, "`level` of the logs: debug, info, warn or error")
	fs.Int64Var(&c.MaxCount, "max", 1_000_000, "highest value a counter may reach")
	fs.IntVar(&c.Cached, "cache", 10_000, "how many counters to keep loaded in memory between requests; 0 loads every counter anew")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", 5*time.Second, "how long a request may wait for the store")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "how long to let in-flight requests finish on SIGINT or SIGTERM")
	fs.VisitAll(func(f *flag.Flag) { f.Usage += fmt.Sprintf(" (env %s)", envName(f.Name)) })

	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := lookupEnv(envName(f.Name)); ok && !onCommandLine[f.Name] {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", envName(f.Name), v, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return config{}, err
	}
	return c, c.validate()
}

func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func (c config) validate() error {
	switch {
	case !slices.Contains(stores, c.Store):
		return fmt.Errorf("unknown store %q: want one of %s", c.Store, strings.Join(stores, ", "))
	case c.Store == "sqlite" && c.SQLitePath == "":
		return errors.New("-sqlite-path must not be empty")
	case c.SnapshotEvery < 0:
		return fmt.Errorf("-snapshot-every must be 0 or more, not %d", c.SnapshotEvery)
	case c.MaxCount < 1:
		return fmt.Errorf("-max must be at least 1, not %d", c.MaxCount)
	case c.Cached < 0:
		return fmt.Errorf("-cache must be 0 or more, not %d", c.Cached)
	case c.RequestTimeout <= 0:
		return fmt.Errorf("-request-timeout must be positive, not %s", c.RequestTimeout)
	case c.ShutdownTimeout <= 0:
		return fmt.Errorf("-shutdown-timeout must be positive, not %s", c.ShutdownTimeout)
	}
	return nil
}
