package dynamodb

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	es "github.com/aggregatekit/eventsourcing"
)

// benchSeq makes stream keys unique across repeated benchmark runs.
var benchSeq atomic.Int64

// benchEvent is a typical small event payload.
var benchEvent = []byte(`{"order":"ord-2026-000123","sku":"SKU-98765","quantity":3,"price":1999,"at":"2026-03-04T05:06:07.890123456Z"}`)

var benchMeta = es.Metadata{es.MetadataCorrelationID: "0f8fad5b-d9cb-469f-a165-70867728950e"}

// One commit of one event appended at the stream's head: our Append (which
// checks, measures and encodes the commit, then does one conditional
// PutItem) next to a hand-written PutItem of the same item.
func BenchmarkAppend(b *testing.B) {
	client := newClient(b)
	table := newTable(b, client)
	ctx := context.Background()

	b.Run("Backend", func(b *testing.B) {
		be, err := NewBackend(ctx, client, table)
		if err != nil {
			b.Fatal(err)
		}
		s := es.StreamID{AggregateType: "Bench", Key: "append-ours-" + strconv.FormatInt(benchSeq.Add(1), 10)}
		head := int64(0)
		for b.Loop() {
			r := []es.Record{{Stream: s, Sequence: head + 1, EventType: "ItemAdded", Data: benchEvent,
				Timestamp: time.Now().UTC(), Metadata: benchMeta}}
			if err := be.Append(ctx, s, head, r); err != nil {
				b.Fatal(err)
			}
			head++
		}
	})

	b.Run("RawSDK", func(b *testing.B) {
		pk := es.StreamID{AggregateType: "Bench", Key: "append-raw-" + strconv.FormatInt(benchSeq.Add(1), 10)}.String()
		seq := int64(0)
		for b.Loop() {
			seq++
			if err := rawAppend(ctx, client, table, pk, seq); err != nil {
				b.Fatal(err)
			}
		}
	})

	// Both in one loop, alternating, so that load from elsewhere on the
	// machine hits both alike: reports each side's time per append and
	// their ratio.
	b.Run("Paired", func(b *testing.B) {
		be, err := NewBackend(ctx, client, table)
		if err != nil {
			b.Fatal(err)
		}
		n := strconv.FormatInt(benchSeq.Add(1), 10)
		s := es.StreamID{AggregateType: "Bench", Key: "paired-ours-" + n}
		pk := es.StreamID{AggregateType: "Bench", Key: "paired-raw-" + n}.String()
		var ours, raw time.Duration
		head := int64(0)
		for b.Loop() {
			t0 := time.Now()
			if err := rawAppend(ctx, client, table, pk, head+1); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			r := []es.Record{{Stream: s, Sequence: head + 1, EventType: "ItemAdded", Data: benchEvent,
				Timestamp: time.Now().UTC(), Metadata: benchMeta}}
			if err := be.Append(ctx, s, head, r); err != nil {
				b.Fatal(err)
			}
			ours += time.Since(t1)
			raw += t1.Sub(t0)
			head++
		}
		b.ReportMetric(float64(ours.Nanoseconds())/float64(head), "ours-ns/append")
		b.ReportMetric(float64(raw.Nanoseconds())/float64(head), "raw-ns/append")
		b.ReportMetric(float64(ours)/float64(raw), "ours/raw")
	})
}

// rawAppend is what a hand-written store would do: build the item and put
// it with the same condition.
func rawAppend(ctx context.Context, client *ddb.Client, table, pk string, seq int64) error {
	n := &types.AttributeValueMemberN{Value: strconv.FormatInt(seq, 10)}
	item := map[string]types.AttributeValue{
		"stream": &types.AttributeValueMemberS{Value: pk},
		"seq":    n,
		"last":   n,
		"cid":    &types.AttributeValueMemberB{Value: newCommitID()},
		"ts":     &types.AttributeValueMemberN{Value: strconv.FormatInt(time.Now().UnixNano(), 10)},
		"md": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			es.MetadataCorrelationID: &types.AttributeValueMemberS{Value: benchMeta[es.MetadataCorrelationID]},
		}},
		"ev": &types.AttributeValueMemberL{Value: []types.AttributeValue{
			&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
				"t": &types.AttributeValueMemberS{Value: "ItemAdded"},
				"d": &types.AttributeValueMemberB{Value: benchEvent},
			}},
		}},
	}
	_, err := client.PutItem(ctx, &ddb.PutItemInput{
		TableName:                aws.String(table),
		Item:                     item,
		ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
		ExpressionAttributeNames: map[string]string{"#pk": "stream"},
	})
	return err
}

// Loading a 1,000-event stream: our Load (strongly consistent paged Query,
// validating decode, records streamed) next to a hand-written paged Query
// that decodes the same items into records without checks. Two shapes:
// 100 commits of 10 events, and 1,000 commits of one event.
func BenchmarkLoad1000(b *testing.B) {
	client := newClient(b)
	table := newTable(b, client)
	ctx := context.Background()
	be, err := NewBackend(ctx, client, table)
	if err != nil {
		b.Fatal(err)
	}
	for _, perCommit := range []int{10, 1} {
		s := es.StreamID{AggregateType: "Bench", Key: "load-" + strconv.Itoa(perCommit)}
		ts := time.Now().UTC()
		for head := int64(0); head < 1000; head += int64(perCommit) {
			r := make([]es.Record, perCommit)
			for i := range r {
				r[i] = es.Record{Stream: s, Sequence: head + int64(i) + 1, EventType: "ItemAdded", Data: benchEvent,
					Timestamp: ts, Metadata: benchMeta}
			}
			if err := be.Append(ctx, s, head, r); err != nil {
				b.Fatal(err)
			}
		}
		name := strconv.Itoa(1000/perCommit) + "x" + strconv.Itoa(perCommit)

		b.Run(name+"/Backend", func(b *testing.B) {
			fresh, err := NewBackend(ctx, client, table)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				n := 0
				for _, err := range fresh.Load(ctx, s, 0) {
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
				if n != 1000 {
					b.Fatalf("loaded %d records", n)
				}
			}
		})

		b.Run(name+"/RawSDK", func(b *testing.B) {
			for b.Loop() {
				if n, err := rawLoad(ctx, client, table, s); err != nil || n != 1000 {
					b.Fatalf("loaded %d records: %v", n, err)
				}
			}
		})

		b.Run(name+"/Paired", func(b *testing.B) {
			fresh, err := NewBackend(ctx, client, table)
			if err != nil {
				b.Fatal(err)
			}
			var ours, raw time.Duration
			loads := 0
			for b.Loop() {
				t0 := time.Now()
				if n, err := rawLoad(ctx, client, table, s); err != nil || n != 1000 {
					b.Fatalf("loaded %d records: %v", n, err)
				}
				t1 := time.Now()
				n := 0
				for _, err := range fresh.Load(ctx, s, 0) {
					if err != nil {
						b.Fatal(err)
					}
					n++
				}
				if n != 1000 {
					b.Fatalf("loaded %d records", n)
				}
				ours += time.Since(t1)
				raw += t1.Sub(t0)
				loads++
			}
			b.ReportMetric(float64(ours.Nanoseconds())/float64(loads), "ours-ns/load")
			b.ReportMetric(float64(raw.Nanoseconds())/float64(loads), "raw-ns/load")
			b.ReportMetric(float64(ours)/float64(raw), "ours/raw")
		})
	}
}

// rawLoad is a hand-written paged Query with a minimal decode, counting
// the records.
func rawLoad(ctx context.Context, client *ddb.Client, table string, s es.StreamID) (int, error) {
	n := 0
	in := &ddb.QueryInput{
		TableName:                aws.String(table),
		KeyConditionExpression:   aws.String("#pk = :pk AND #sk >= :from"),
		ExpressionAttributeNames: map[string]string{"#pk": "stream", "#sk": "seq"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":   &types.AttributeValueMemberS{Value: s.String()},
			":from": &types.AttributeValueMemberN{Value: "1"},
		},
		ConsistentRead: aws.Bool(true),
	}
	for {
		out, err := client.Query(ctx, in)
		if err != nil {
			return n, err
		}
		for _, item := range out.Items {
			n += len(rawDecode(s, item))
		}
		if len(out.LastEvaluatedKey) == 0 {
			return n, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// rawDecode is the minimal decode a hand-written loader would do: no
// validation, no error handling.
func rawDecode(s es.StreamID, item map[string]types.AttributeValue) []es.Record {
	first, _ := strconv.ParseInt(item["seq"].(*types.AttributeValueMemberN).Value, 10, 64)
	ns, _ := strconv.ParseInt(item["ts"].(*types.AttributeValueMemberN).Value, 10, 64)
	ts := time.Unix(0, ns).UTC()
	var md es.Metadata
	if m, ok := item["md"].(*types.AttributeValueMemberM); ok {
		md = make(es.Metadata, len(m.Value))
		for k, v := range m.Value {
			md[k] = v.(*types.AttributeValueMemberS).Value
		}
	}
	evs := item["ev"].(*types.AttributeValueMemberL).Value
	out := make([]es.Record, len(evs))
	for i, v := range evs {
		ev := v.(*types.AttributeValueMemberM).Value
		out[i] = es.Record{Stream: s, Sequence: first + int64(i), Timestamp: ts, Metadata: md,
			EventType: ev["t"].(*types.AttributeValueMemberS).Value,
			Data:      ev["d"].(*types.AttributeValueMemberB).Value}
	}
	return out
}
