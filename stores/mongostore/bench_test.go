package mongostore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	esmongo "github.com/aggregatekit/eventsourcing/stores/mongo"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Benchmarks compare the store with the raw driver doing the same work on
// the same server, in the same run:
//
//	EVENTSOURCING_MONGO_URI=... go test -run '^$' -bench . ./stores/mongo/

// benchBackend returns a Backend on a fresh collection (with the store's
// index) and a raw handle on it.
func benchBackend(b *testing.B, client *mongo.Client, db string, opts ...esmongo.Option) (*esmongo.Backend, *mongo.Collection) {
	b.Helper()
	name := newCollection()
	be, err := esmongo.NewBackend(context.Background(), client, db, name, opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = be.Close() })
	return be, client.Database(db).Collection(name)
}

func benchRecord(s es.StreamID, seq int64) []es.Record {
	return []es.Record{{Stream: s, Sequence: seq, EventType: "Incremented",
		Data: []byte(`{"By":1,"Note":"benchmark event"}`), Timestamp: time.Now(),
		Metadata: es.Metadata{es.MetadataCorrelationID: "corr-0123456789"}}}
}

// rawCommit is the document the store writes for benchRecord, built the way
// a hand-written driver program would.
func rawCommit(s es.StreamID, seq int64) bson.D {
	r := benchRecord(s, seq)[0]
	return bson.D{
		{Key: "_id", Value: fmt.Sprintf("%s/%s/%019d", s.AggregateType, s.Key, seq)},
		{Key: "aggregate", Value: s.AggregateType}, {Key: "key", Value: s.Key},
		{Key: "first", Value: seq}, {Key: "last", Value: seq},
		{Key: "time", Value: bson.NewDateTimeFromTime(r.Timestamp)}, {Key: "ns", Value: int32(r.Timestamp.Nanosecond() % 1e6)},
		{Key: "meta", Value: bson.A{bson.D{{Key: "k", Value: es.MetadataCorrelationID}, {Key: "v", Value: r.Metadata[es.MetadataCorrelationID]}}}},
		{Key: "events", Value: bson.A{bson.D{{Key: "type", Value: r.EventType}, {Key: "data", Value: r.Data}}}},
	}
}

// BenchmarkAppend appends one 1-event commit per operation. "new-stream" is
// Append at expected 0 (one insert), "existing-stream" Append at the head of
// a growing stream that the Backend wrote (a known boundary: one insert),
// "existing-stream-no-cache" the same with WithBoundaryCache(0) (head check +
// insert); "raw-insert" is the driver's InsertOne of the same document. The
// "-interleaved" variants alternate the store's Append with the raw insert in
// one loop and report the ratio of their times (store/raw).
func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	client := connect(b)
	db := newDatabase(b, client)

	b.Run("new-stream", func(b *testing.B) {
		be, _ := benchBackend(b, client, db)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			s := es.StreamID{AggregateType: "Counter", Key: fmt.Sprintf("k%d", i)}
			if err := be.Append(ctx, s, 0, benchRecord(s, 1)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw-insert", func(b *testing.B) {
		_, coll := benchBackend(b, client, db)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			s := es.StreamID{AggregateType: "Counter", Key: fmt.Sprintf("k%d", i)}
			if _, err := coll.InsertOne(ctx, rawCommit(s, 1)); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The machine's load drifts during a run; alternating the two inserts
	// in one loop measures their ratio despite the drift.
	b.Run("interleaved", func(b *testing.B) {
		be, coll := benchBackend(b, client, db)
		var ours, raw time.Duration
		i := 0
		for b.Loop() {
			i++
			s := es.StreamID{AggregateType: "Counter", Key: fmt.Sprintf("k%d", i)}
			t0 := time.Now()
			if err := be.Append(ctx, s, 0, benchRecord(s, 1)); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			s.Key += "-raw"
			if _, err := coll.InsertOne(ctx, rawCommit(s, 1)); err != nil {
				b.Fatal(err)
			}
			ours, raw = ours+t1.Sub(t0), raw+time.Since(t1)
		}
		b.ReportMetric(float64(ours.Nanoseconds())/float64(i), "store-ns/op")
		b.ReportMetric(float64(raw.Nanoseconds())/float64(i), "raw-ns/op")
		b.ReportMetric(float64(ours)/float64(raw), "store/raw")
	})
	for _, c := range []struct {
		name string
		opts []esmongo.Option
	}{
		{"existing-stream", nil},
		{"existing-stream-no-cache", []esmongo.Option{esmongo.WithBoundaryCache(0)}},
	} {
		b.Run(c.name, func(b *testing.B) {
			be, _ := benchBackend(b, client, db, c.opts...)
			s := es.StreamID{AggregateType: "Counter", Key: "one"}
			b.ReportAllocs()
			seq := int64(0)
			for b.Loop() {
				if err := be.Append(ctx, s, seq, benchRecord(s, seq+1)); err != nil {
					b.Fatal(err)
				}
				seq++
			}
		})
		// Each side grows a stream of its own in the same collection: the
		// store appends at its head, the driver inserts the next document.
		b.Run(c.name+"-interleaved", func(b *testing.B) {
			be, coll := benchBackend(b, client, db, c.opts...)
			s := es.StreamID{AggregateType: "Counter", Key: "ours"}
			r := es.StreamID{AggregateType: "Counter", Key: "raw"}
			var ours, raw time.Duration
			seq := int64(0)
			for b.Loop() {
				t0 := time.Now()
				if err := be.Append(ctx, s, seq, benchRecord(s, seq+1)); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if _, err := coll.InsertOne(ctx, rawCommit(r, seq+1)); err != nil {
					b.Fatal(err)
				}
				ours, raw = ours+t1.Sub(t0), raw+time.Since(t1)
				seq++
			}
			b.ReportMetric(float64(ours.Nanoseconds())/float64(seq), "store-ns/op")
			b.ReportMetric(float64(raw.Nanoseconds())/float64(seq), "raw-ns/op")
			b.ReportMetric(float64(ours)/float64(raw), "store/raw")
		})
	}
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
// "raw-find" with the driver's Find and Decode into structs.
func BenchmarkLoad1000(b *testing.B) {
	ctx := context.Background()
	client := connect(b)
	db := newDatabase(b, client)
	for _, per := range []int{1, 10} {
		be, coll := benchBackend(b, client, db)
		s := es.StreamID{AggregateType: "Counter", Key: "long"}
		for seq := int64(0); seq < 1000; seq += int64(per) {
			batch := make([]es.Record, per)
			for i := range batch {
				batch[i] = benchRecord(s, seq+int64(i)+1)[0]
			}
			if err := be.Append(ctx, s, seq, batch); err != nil {
				b.Fatal(err)
			}
		}
		name := fmt.Sprintf("commits=%dx%d", 1000/per, per)
		loadStore := func(b *testing.B) {
			n := 0
			for _, err := range be.Load(ctx, s, 0) {
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			if n != 1000 {
				b.Fatalf("loaded %d events", n)
			}
		}
		filter := bson.D{
			{Key: "_id", Value: bson.D{{Key: "$gt", Value: fmt.Sprintf("Counter/long/%019d", 0)}, {Key: "$lte", Value: "Counter/long/9999999999999999999"}}},
			{Key: "aggregate", Value: "Counter"}, {Key: "key", Value: "long"},
		}
		opts := options.Find().SetSort(bson.D{{Key: "_id", Value: 1}})
		loadRaw := func(b *testing.B) {
			cur, err := coll.Find(ctx, filter, opts)
			if err != nil {
				b.Fatal(err)
			}
			defer cur.Close(ctx)
			n := 0
			for cur.Next(ctx) {
				var d rawDoc
				if err := cur.Decode(&d); err != nil {
					b.Fatal(err)
				}
				n += len(d.Events)
			}
			if err := cur.Err(); err != nil {
				b.Fatal(err)
			}
			if n != 1000 {
				b.Fatalf("decoded %d events", n)
			}
		}
		b.Run(name+"/store", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				loadStore(b)
			}
		})
		b.Run(name+"/raw-find", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				loadRaw(b)
			}
		})
		b.Run(name+"/interleaved", func(b *testing.B) {
			var ours, raw time.Duration
			n := 0
			for b.Loop() {
				n++
				t0 := time.Now()
				loadStore(b)
				t1 := time.Now()
				loadRaw(b)
				ours, raw = ours+t1.Sub(t0), raw+time.Since(t1)
			}
			b.ReportMetric(float64(ours.Nanoseconds())/float64(n), "store-ns/op")
			b.ReportMetric(float64(raw.Nanoseconds())/float64(n), "raw-ns/op")
			b.ReportMetric(float64(ours)/float64(raw), "store/raw")
		})
	}
}
