package mongostore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/internal/cputime"
	"github.com/aggregatekit/eventsourcing/internal/testkit"
	"github.com/aggregatekit/eventsourcing/stores/mongostore"
)

// Benchmarks compare two ways of doing the same work on the same server in
// the same run, alternating them so that load from elsewhere on the shared
// machine hits both alike:
//
//	bash tools/testservers.sh -- go test -run '^$' -bench . ./stores/mongostore/
//
// Each reports wall time, this process's CPU time and, when the test
// server's PID is known (tools/testservers.sh exports it), the server's CPU
// time per operation, and their ratios.

// cost is what one side of a paired benchmark spent.
type cost struct{ wall, cpu, server time.Duration }

// paired runs base and other alternately, once each per iteration, and
// reports per operation the wall, process CPU and server CPU time of each
// and the ratios other/base, named after them.
func paired(b *testing.B, baseName string, base func() error, otherName string, other func() error) {
	b.Helper()
	server := testkit.Server("mongo").CPU()
	var cb, co cost
	run := func(c *cost, fn func() error) {
		var s0 time.Duration
		if server != nil {
			s0 = server()
		}
		p0, t0 := cputime.Process(), time.Now()
		if err := fn(); err != nil {
			b.Fatal(err)
		}
		c.wall += time.Since(t0)
		c.cpu += cputime.Process() - p0
		if server != nil {
			c.server += server() - s0
		}
	}
	n := 0
	for b.Loop() {
		run(&cb, base)
		run(&co, other)
		n++
	}
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(n) }
	ratio := func(x, y time.Duration) float64 {
		if y == 0 {
			return 0
		}
		return float64(x) / float64(y)
	}
	for _, s := range []struct {
		name string
		c    cost
	}{{baseName, cb}, {otherName, co}} {
		b.ReportMetric(per(s.c.wall), s.name+"-ns/op")
		b.ReportMetric(per(s.c.cpu), s.name+"-cpu-ns/op")
		if server != nil {
			b.ReportMetric(per(s.c.server), s.name+"-server-cpu-ns/op")
		}
	}
	b.ReportMetric(ratio(co.wall, cb.wall), otherName+"/"+baseName)
	b.ReportMetric(ratio(co.cpu, cb.cpu), otherName+"/"+baseName+"-cpu")
	if server != nil {
		b.ReportMetric(ratio(co.server, cb.server), otherName+"/"+baseName+"-server-cpu")
	}
}

// reportCPU reports the process CPU time per operation since start.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64((cputime.Process()-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// benchBackend returns a Backend on a fresh collection (with the store's
// indexes) and a raw handle on it.
func benchBackend(b *testing.B, client *mongo.Client, db string, opts ...mongostore.Option) (*mongostore.Backend, *mongo.Collection) {
	b.Helper()
	name := newCollection()
	be, err := mongostore.NewBackend(context.Background(), client, db, name, opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = be.Close() })
	return be, client.Database(db).Collection(name)
}

const benchCorrelation = "corr-0123456789"

// benchCommit is a commit of one small event with one metadata header.
func benchCommit(s backend.StreamID, expected int64) backend.Commit {
	id := fmt.Sprintf("bench-%s-%d", s.Key, expected+1)
	return backend.Commit{Stream: s, Expected: expected, ID: id, Records: []backend.Record{{
		Stream: s, Sequence: expected + 1, EventType: "Incremented", CommitID: id,
		Data: []byte(`{"By":1,"Note":"benchmark event"}`), Timestamp: time.Now(),
		Metadata: backend.Metadata{"correlation_id": benchCorrelation}}}}
}

// rawCommit is the document the store writes for benchCommit (without the
// pending marker), built the way a hand-written driver program would.
func rawCommit(s backend.StreamID, expected int64) bson.D {
	c := benchCommit(s, expected)
	r := c.Records[0]
	return bson.D{
		{Key: "_id", Value: fmt.Sprintf("%s/%s/%019d", s.AggregateType, s.Key, r.Sequence)},
		{Key: "aggregate", Value: s.AggregateType}, {Key: "key", Value: s.Key},
		{Key: "first", Value: r.Sequence}, {Key: "last", Value: r.Sequence}, {Key: "cid", Value: c.ID},
		{Key: "time", Value: bson.NewDateTimeFromTime(r.Timestamp)}, {Key: "ns", Value: int32(r.Timestamp.Nanosecond() % 1e6)},
		{Key: "meta", Value: bson.A{bson.D{{Key: "k", Value: "correlation_id"}, {Key: "v", Value: benchCorrelation}}}},
		{Key: "events", Value: bson.A{bson.D{{Key: "type", Value: r.EventType}, {Key: "data", Value: r.Data}}}},
	}
}

// BenchmarkAppend appends one 1-event commit per operation. "new-stream" is
// Append at expected 0 (one insert), "existing-stream" Append at the head of
// a growing stream that the Backend wrote (a known boundary: one insert),
// "existing-stream-no-cache" the same with WithBoundaryCache(0) (head check
// + insert); "raw-insert" is the driver's InsertOne of the same document.
// The "-vs-raw" variants alternate the store's Append (without the pending
// marker, like the raw document) with the raw insert and report the ratio
// store/raw.
func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	client := connect(b)
	db := newDatabase(b, client)

	b.Run("new-stream", func(b *testing.B) {
		be, _ := benchBackend(b, client, db)
		b.ReportAllocs()
		i, cpu := 0, cputime.Process()
		for b.Loop() {
			i++
			s := backend.StreamID{AggregateType: "Counter", Key: fmt.Sprintf("k%d", i)}
			if err := be.Append(ctx, benchCommit(s, 0)); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpu)
	})
	b.Run("raw-insert", func(b *testing.B) {
		_, coll := benchBackend(b, client, db)
		b.ReportAllocs()
		i, cpu := 0, cputime.Process()
		for b.Loop() {
			i++
			s := backend.StreamID{AggregateType: "Counter", Key: fmt.Sprintf("k%d", i)}
			if _, err := coll.InsertOne(ctx, rawCommit(s, 0)); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpu)
	})
	b.Run("new-stream-vs-raw", func(b *testing.B) {
		be, coll := benchBackend(b, client, db, mongostore.WithoutOutbox())
		i := 0
		paired(b, "raw", func() error {
			i++
			_, err := coll.InsertOne(ctx, rawCommit(backend.StreamID{AggregateType: "Counter", Key: fmt.Sprintf("raw%d", i)}, 0))
			return err
		}, "store", func() error {
			return be.Append(ctx, benchCommit(backend.StreamID{AggregateType: "Counter", Key: fmt.Sprintf("k%d", i)}, 0))
		})
	})
	for _, c := range []struct {
		name string
		opts []mongostore.Option
	}{
		{"existing-stream", nil},
		{"existing-stream-no-cache", []mongostore.Option{mongostore.WithBoundaryCache(0)}},
	} {
		b.Run(c.name, func(b *testing.B) {
			be, _ := benchBackend(b, client, db, c.opts...)
			s := backend.StreamID{AggregateType: "Counter", Key: "one"}
			b.ReportAllocs()
			seq, cpu := int64(0), cputime.Process()
			for b.Loop() {
				if err := be.Append(ctx, benchCommit(s, seq)); err != nil {
					b.Fatal(err)
				}
				seq++
			}
			reportCPU(b, cpu)
		})
		// Each side grows a stream of its own in the same collection: the
		// store appends at its head, the driver inserts the next document.
		b.Run(c.name+"-vs-raw", func(b *testing.B) {
			be, coll := benchBackend(b, client, db, append(c.opts, mongostore.WithoutOutbox())...)
			s := backend.StreamID{AggregateType: "Counter", Key: "ours"}
			r := backend.StreamID{AggregateType: "Counter", Key: "raw"}
			var rawSeq, seq int64
			paired(b, "raw", func() error {
				_, err := coll.InsertOne(ctx, rawCommit(r, rawSeq))
				rawSeq++
				return err
			}, "store", func() error {
				err := be.Append(ctx, benchCommit(s, seq))
				seq++
				return err
			})
		})
	}
}

// BenchmarkOutboxMarker measures what the outbox's pending marker costs an
// Append: "marker-vs-none" alternates Append at the head of a growing stream
// on a Backend with the marker (the default: the insert also writes the
// pending index) and on one WithoutOutbox (on a collection without the
// pending index), each on a collection of its own, and reports
// marker/none for wall time, this process's CPU and the server's CPU.
// "relay-100" is the other half of the marker's cost: per operation, one
// Pending read of 100 commits (10 streams of 10) and one MarkPublished of
// them, after 100 Appends that are not timed. The collection is emptied
// (untimed) before each operation: FerretDB scans the whole collection for
// every query but an _id equality, so on it the figure would otherwise
// grow with the number of published commits, which on MongoDB the pending
// index skips.
func BenchmarkOutboxMarker(b *testing.B) {
	ctx := context.Background()
	client := connect(b)
	db := newDatabase(b, client)

	b.Run("marker-vs-none", func(b *testing.B) {
		marked, _ := benchBackend(b, client, db)
		plain, _ := benchBackend(b, client, db, mongostore.WithoutOutbox())
		s := backend.StreamID{AggregateType: "Counter", Key: "one"}
		var ms, ps int64
		paired(b, "none", func() error {
			err := plain.Append(ctx, benchCommit(s, ps))
			ps++
			return err
		}, "marker", func() error {
			err := marked.Append(ctx, benchCommit(s, ms))
			ms++
			return err
		})
	})
	b.Run("relay-100", func(b *testing.B) {
		be, coll := benchBackend(b, client, db)
		var cpu, srv time.Duration
		server := testkit.Server("mongo").CPU()
		round := 0
		for b.Loop() {
			b.StopTimer()
			round++
			if _, err := coll.DeleteMany(ctx, bson.D{}); err != nil {
				b.Fatal(err)
			}
			for i := 0; i < 100; i++ {
				s := backend.StreamID{AggregateType: "Counter", Key: fmt.Sprintf("r%d-k%d", round, i%10)}
				if err := be.Append(ctx, benchCommit(s, int64(i/10))); err != nil {
					b.Fatal(err)
				}
			}
			b.StartTimer()
			var s0 time.Duration
			if server != nil {
				s0 = server()
			}
			c0 := cputime.Process()
			var refs []backend.CommitRef
			for c, err := range be.Pending(ctx, 100) {
				if err != nil {
					b.Fatal(err)
				}
				refs = append(refs, c.Ref())
			}
			if len(refs) != 100 {
				b.Fatalf("Pending yielded %d commits, want 100", len(refs))
			}
			if err := be.MarkPublished(ctx, refs); err != nil {
				b.Fatal(err)
			}
			cpu += cputime.Process() - c0
			if server != nil {
				srv += server() - s0
			}
		}
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
		if server != nil {
			b.ReportMetric(float64(srv.Nanoseconds())/float64(b.N), "server-cpu-ns/op")
		}
	})
}

// rawEvent and rawDoc are what a hand-written program would decode the
// commit documents into.
type rawEvent struct {
	Type string `bson:"type"`
	Data []byte `bson:"data"`
}

type rawDoc struct {
	ID        string        `bson:"_id"`
	Aggregate string        `bson:"aggregate"`
	Key       string        `bson:"key"`
	First     int64         `bson:"first"`
	Last      int64         `bson:"last"`
	CommitID  string        `bson:"cid"`
	Time      bson.DateTime `bson:"time"`
	Nanos     int32         `bson:"ns"`
	Meta      []struct {
		K string `bson:"k"`
		V string `bson:"v"`
	} `bson:"meta"`
	Events []rawEvent `bson:"events"`
}

// BenchmarkLoad1000 loads a 1,000-event stream stored as 1,000 commits of
// one event and as 100 commits of ten: "store" through Backend.Load,
// "raw-find" with the driver's Find and Decode into structs, "store-vs-raw"
// both alternately.
func BenchmarkLoad1000(b *testing.B) {
	ctx := context.Background()
	client := connect(b)
	db := newDatabase(b, client)
	for _, per := range []int{1, 10} {
		be, coll := benchBackend(b, client, db)
		s := backend.StreamID{AggregateType: "Counter", Key: "long"}
		for seq := int64(0); seq < 1000; seq += int64(per) {
			c := benchCommit(s, seq)
			for i := 1; i < per; i++ {
				r := c.Records[0]
				r.Sequence = seq + int64(i) + 1
				c.Records = append(c.Records, r)
			}
			if err := be.Append(ctx, c); err != nil {
				b.Fatal(err)
			}
		}
		name := fmt.Sprintf("commits=%dx%d", 1000/per, per)
		loadStore := func() error {
			n := 0
			for _, err := range be.Load(ctx, s, 0) {
				if err != nil {
					return err
				}
				n++
			}
			if n != 1000 {
				return fmt.Errorf("loaded %d events", n)
			}
			return nil
		}
		filter := bson.D{
			{Key: "_id", Value: bson.D{{Key: "$gt", Value: fmt.Sprintf("Counter/long/%019d", 0)}, {Key: "$lte", Value: "Counter/long/9999999999999999999"}}},
			{Key: "aggregate", Value: "Counter"}, {Key: "key", Value: "long"},
		}
		opts := options.Find().SetSort(bson.D{{Key: "_id", Value: 1}})
		loadRaw := func() error {
			cur, err := coll.Find(ctx, filter, opts)
			if err != nil {
				return err
			}
			defer cur.Close(ctx)
			n := 0
			for cur.Next(ctx) {
				var d rawDoc
				if err := cur.Decode(&d); err != nil {
					return err
				}
				n += len(d.Events)
			}
			if err := cur.Err(); err != nil {
				return err
			}
			if n != 1000 {
				return fmt.Errorf("decoded %d events", n)
			}
			return nil
		}
		for _, side := range []struct {
			name string
			fn   func() error
		}{{"store", loadStore}, {"raw-find", loadRaw}} {
			b.Run(name+"/"+side.name, func(b *testing.B) {
				b.ReportAllocs()
				cpu := cputime.Process()
				for b.Loop() {
					if err := side.fn(); err != nil {
						b.Fatal(err)
					}
				}
				reportCPU(b, cpu)
			})
		}
		b.Run(name+"/store-vs-raw", func(b *testing.B) { paired(b, "raw", loadRaw, "store", loadStore) })
	}
}
