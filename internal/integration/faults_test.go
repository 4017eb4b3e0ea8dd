package faults_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	mongodriver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/internal/testenv"
	"github.com/aggregatekit/eventsourcing/stores/dynamodb"
	"github.com/aggregatekit/eventsourcing/stores/mongo"
	"github.com/aggregatekit/eventsourcing/storetest"
)

const (
	commandTimeout = 5 * time.Second
	// hangSlack is how far past its deadline a command may return before
	// the test calls it hung: generous, since the machine is shared.
	hangSlack = 10 * time.Second
)

func enabled(t *testing.T) {
	if os.Getenv("EVENTSOURCING_FAULTS") == "" {
		t.Skip("fault injection stops shared test servers: `make test` runs it in its own step with EVENTSOURCING_FAULTS=1")
	}
}

// outcome is what one command returned.
type outcome struct {
	batch   string
	size    int
	err     error
	elapsed time.Duration
}

// server is a test server the test may kill and restart.
type server struct {
	name, pidVar, restartVar string
}

func (s server) kill(t *testing.T) {
	t.Helper()
	pid, err := strconv.Atoi(testenv.Get(t, s.pidVar))
	if err != nil {
		t.Fatalf("%s: %v", s.pidVar, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s (pid %d): %v", s.name, pid, err)
	}
	for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(20 * time.Millisecond) // wait for the process to go
	}
}

func (s server) restart(t *testing.T) {
	t.Helper()
	out, err := exec.Command("bash", "-c", testenv.Get(t, s.restartVar)).Output()
	if err != nil {
		t.Fatalf("restart %s: %v", s.name, err)
	}
	t.Logf("%s restarted, pid %s", s.name, strings.TrimSpace(string(out)))
}

// run drives writers on a hot and some cold aggregates until stop closes,
// and reports every command's outcome.
func run(store es.EventStore, key string, writers int, stop <-chan struct{}) []outcome {
	reg := storetest.NewRegistry()
	var mu sync.Mutex
	var outcomes []outcome
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		k := key + "-hot"
		if w%3 == 2 {
			k = fmt.Sprintf("%s-cold%d", key, w)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p, err := storetest.NewProbe(k, "", reg, store)
				if err != nil {
					panic(err)
				}
				p.SetRetryPolicy(es.RetryPolicy{MaxAttempts: 20, MinDelay: time.Millisecond, MaxDelay: 50 * time.Millisecond})
				batch := fmt.Sprintf("w%d-%d", w, i)
				size := 1 + i%3
				ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
				start := time.Now()
				err = p.Handle(ctx, storetest.Add{Batch: batch, Size: size})
				o := outcome{batch: batch, size: size, err: err, elapsed: time.Since(start)}
				cancel()
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
				if err != nil {
					time.Sleep(20 * time.Millisecond) // don't spin while the server is down
				}
			}
		}()
	}
	wg.Wait()
	return outcomes
}

// stored returns the batches found in the streams of key, checking that
// each is whole.
func stored(t *testing.T, store es.EventStore, key string, writers int) map[string]int {
	t.Helper()
	keys := []string{key + "-hot"}
	for w := 0; w < writers; w++ {
		if w%3 == 2 {
			keys = append(keys, fmt.Sprintf("%s-cold%d", key, w))
		}
	}
	batches := map[string]int{}
	for _, k := range keys {
		p, err := storetest.NewProbe(k, "", storetest.NewRegistry(), store)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err = p.Refresh(ctx)
		cancel()
		if err != nil {
			t.Fatalf("after the restart, stream %s does not load: %v", k, err)
		}
		for _, id := range p.IDs {
			batch := id[:strings.LastIndexByte(id, '-')]
			batches[batch]++
		}
	}
	return batches
}

// faultRun kills srv while writers run against open()'s store, restarts it,
// and reconciles what was acknowledged with what is stored.
func faultRun(t *testing.T, srv server, open func(t *testing.T) es.EventStore) {
	enabled(t)
	store := open(t)
	defer store.Close()
	key := fmt.Sprintf("fault-%d", time.Now().UnixNano())
	const writers = 9
	stop := make(chan struct{})
	done := make(chan []outcome)
	go func() { done <- run(store, key, writers, stop) }()

	time.Sleep(1500 * time.Millisecond)
	srv.kill(t)
	// A command while the server is down must fail, within its deadline.
	probe, err := storetest.NewProbe(key+"-hot", "", storetest.NewRegistry(), store)
	if err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	start := time.Now()
	perr := probe.Handle(pctx, storetest.Add{Batch: "probe", Size: 1})
	cancel()
	if perr == nil {
		t.Errorf("a command succeeded while %s was down", srv.name)
	}
	time.Sleep(time.Second)
	srv.restart(t)
	time.Sleep(3 * time.Second)
	close(stop)
	outcomes := append(<-done, outcome{batch: "probe", size: 1, err: perr, elapsed: time.Since(start)})

	var acked, conflicts, failed int
	unknown := map[string]error{} // failed other than by conflict: may or may not be stored
	ackedBatches := map[string]int{}
	conflicted := map[string]bool{}
	for _, o := range outcomes {
		if o.elapsed > commandTimeout+hangSlack {
			t.Errorf("command %s took %v, past its %v deadline", o.batch, o.elapsed, commandTimeout)
		}
		switch {
		case o.err == nil:
			acked++
			ackedBatches[o.batch] = o.size
		case errors.Is(o.err, es.ErrConcurrency):
			conflicts++
			conflicted[o.batch] = true
		default:
			failed++
			unknown[o.batch] = o.err
		}
	}
	if acked == 0 {
		t.Fatalf("no command succeeded")
	}
	got := stored(t, store, key, writers)
	for batch, size := range ackedBatches {
		if got[batch] != size {
			t.Errorf("acknowledged batch %s: %d of %d events stored", batch, got[batch], size)
		}
	}
	ambiguous := 0
	for batch, n := range got {
		if _, ok := ackedBatches[batch]; ok {
			continue
		}
		switch {
		case conflicted[batch]:
			t.Errorf("batch %s failed with a conflict but %d events are stored", batch, n)
		case unknown[batch] != nil:
			// The write landed but its answer was lost in the outage: the
			// caller must have been told the outcome is unknown.
			ambiguous++
			if !errors.Is(unknown[batch], es.ErrUnknownOutcome) {
				t.Errorf("batch %s is stored but its command failed with %v, not ErrUnknownOutcome", batch, unknown[batch])
			}
		default:
			t.Errorf("batch %s is stored but no command returned for it", batch)
		}
	}
	t.Logf("%d commands: %d acknowledged, %d conflicts, %d failed during the outage (%d of those were stored: outcome unknown to the caller)",
		len(outcomes), acked, conflicts, failed, ambiguous)
	if ambiguous > 0 {
		t.Logf("stored = acknowledged + %d commands whose reply was lost; a caller retrying them must make commands idempotent", ambiguous)
	}
}

func TestMongoServerKilled(t *testing.T) {
	faultRun(t, server{"FerretDB", "EVENTSOURCING_MONGO_PID", "EVENTSOURCING_MONGO_RESTART"}, func(t *testing.T) es.EventStore {
		uri := testenv.Get(t, testenv.MongoURI)
		client, err := mongodriver.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(commandTimeout).SetConnectTimeout(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
		s, err := mongo.NewStore(context.Background(), client, fmt.Sprintf("faults%d", time.Now().UnixNano()%1e9), "events")
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestDynamoDBServerKilled(t *testing.T) {
	faultRun(t, server{"dynalite", "EVENTSOURCING_DYNAMODB_PID", "EVENTSOURCING_DYNAMODB_RESTART"}, func(t *testing.T) es.EventStore {
		client := ddb.New(ddb.Options{
			Region:       "us-east-1",
			BaseEndpoint: aws.String(testenv.Get(t, testenv.DynamoDBEndpoint)),
			Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		})
		table := fmt.Sprintf("faults%d", time.Now().UnixNano()%1e9)
		ctx := context.Background()
		if err := dynamodb.CreateTable(ctx, client, table); err != nil {
			t.Fatal(err)
		}
		s, err := dynamodb.NewStore(ctx, client, table)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
