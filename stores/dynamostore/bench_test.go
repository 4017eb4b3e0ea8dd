package dynamostore

import (
	"context"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/aggregatekit/eventsourcing/backend"
	"github.com/aggregatekit/eventsourcing/internal/cputime"
	"github.com/aggregatekit/eventsourcing/internal/testkit"
)

// benchSeq makes stream keys unique across repeated benchmark runs.
var benchSeq atomic.Int64

// benchEvent is a typical small event payload.
var benchEvent = []byte(`{"order":"ord-2026-000123","sku":"SKU-98765","quantity":3,"price":1999,"at":"2026-03-04T05:06:07.890123456Z"}`)

var benchMeta = backend.Metadata{"correlation_id": "0f8fad5b-d9cb-469f-a165-70867728950e"}

// side accumulates the cost of one side of a paired benchmark.
type side struct {
	wall, cpu, server time.Duration
}

// paired runs a and b alternately, once each per iteration (in turns going
// first), so that load from elsewhere on the shared machine hits both alike.
// It reports per operation each side's wall time, this process's CPU time
// and (when known) the server's CPU time, named after the sides (for
// example "raw-ns/append", "ours-cpu-ns/append"), and the ratios of b to a:
// "ours/raw" is the median of the per-iteration wall time ratios, which
// outliers on a busy machine do not move, "ours/raw-total" the ratio of the
// total wall times and "ours/raw-cpu" that of this process's CPU times.
func paired(bm *testing.B, aName, bName, unit string, a, b func() error) {
	srv := testkit.Server("dynamodb").CPU()
	var sa, sb side
	var ratios []float64
	run := func(s *side, f func() error) time.Duration {
		var s0 time.Duration
		if srv != nil {
			s0 = srv()
		}
		c0, t0 := cputime.Process(), time.Now()
		if err := f(); err != nil {
			bm.Fatal(err)
		}
		d := time.Since(t0)
		s.wall += d
		s.cpu += cputime.Process() - c0
		if srv != nil {
			s.server += srv() - s0
		}
		return d
	}
	n := 0
	for bm.Loop() {
		var da, db time.Duration
		if n%2 == 0 { // alternate which goes first
			da = run(&sa, a)
			db = run(&sb, b)
		} else {
			db = run(&sb, b)
			da = run(&sa, a)
		}
		ratios = append(ratios, float64(db)/float64(da))
		n++
	}
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(n) }
	ratio := bName + "/" + aName
	slices.Sort(ratios)
	bm.ReportMetric(ratios[len(ratios)/2], ratio)
	bm.ReportMetric(float64(sb.wall)/float64(sa.wall), ratio+"-total")
	bm.ReportMetric(per(sa.wall), aName+"-ns/"+unit)
	bm.ReportMetric(per(sb.wall), bName+"-ns/"+unit)
	bm.ReportMetric(per(sa.cpu), aName+"-cpu-ns/"+unit)
	bm.ReportMetric(per(sb.cpu), bName+"-cpu-ns/"+unit)
	if sa.cpu > 0 {
		bm.ReportMetric(float64(sb.cpu)/float64(sa.cpu), ratio+"-cpu")
	}
	if srv != nil {
		bm.ReportMetric(per(sa.server), aName+"-server-cpu-ns/"+unit)
		bm.ReportMetric(per(sb.server), bName+"-server-cpu-ns/"+unit)
	}
}

// appender appends one-event commits at the head of a stream of its own.
func appender(be *Backend, name string) func() error {
	s := backend.StreamID{AggregateType: "Bench", Key: name + "-" + strconv.FormatInt(benchSeq.Add(1), 10)}
	head := int64(0)
	return func() error {
		r := []backend.Record{{Stream: s, Sequence: head + 1, EventType: "ItemAdded", Data: benchEvent,
			Timestamp: time.Now().UTC(), Metadata: benchMeta}}
		if err := appendRecs(context.Background(), be, s, head, r); err != nil {
			return err
		}
		head++
		return nil
	}
}

// One commit of one event appended at the stream's head.
//
// Paired: raw, a hand-written conditional PutItem of the same item (without
// the outbox marker), against ours, our Append (which checks, measures and
// encodes the commit, then does one conditional PutItem, with the outbox
// marker).
//
// OutboxMarker: the cost of the outbox, Append WithoutOutbox (plain) against
// Append with the marker (marked: the item carries two more attributes and
// the server also writes the outbox index). Same table.
func BenchmarkAppend(bm *testing.B) {
	client := newClient(bm)
	table := newTable(bm, client)
	ctx := context.Background()
	bm.Run("Paired", func(bm *testing.B) {
		be, err := NewBackend(ctx, client, table)
		if err != nil {
			bm.Fatal(err)
		}
		pk := backend.StreamID{AggregateType: "Bench", Key: "raw-" + strconv.FormatInt(benchSeq.Add(1), 10)}.String()
		seq := int64(0)
		raw := func() error {
			seq++
			return rawAppend(ctx, client, table, pk, seq)
		}
		paired(bm, "raw", "ours", "append", raw, appender(be, "ours"))
	})
	bm.Run("OutboxMarker", func(bm *testing.B) {
		without, err := NewBackend(ctx, client, table, WithoutOutbox())
		if err != nil {
			bm.Fatal(err)
		}
		with, err := NewBackend(ctx, client, table)
		if err != nil {
			bm.Fatal(err)
		}
		paired(bm, "plain", "marked", "append", appender(without, "plain"), appender(with, "marked"))
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
		"id":     &types.AttributeValueMemberS{Value: newID()},
		"tn":     &types.AttributeValueMemberN{Value: strconv.FormatInt(time.Now().UnixNano(), 10)},
		"md": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			"correlation_id": &types.AttributeValueMemberS{Value: benchMeta["correlation_id"]},
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

// Loading a 1,000-event stream: raw, a hand-written paged Query that
// decodes the same items into records without checks, against ours, our Load (strongly
// consistent paged Query, validating decode, records streamed). Two shapes:
// 100 commits of 10 events, and 1,000 commits of one event.
func BenchmarkLoad1000(bm *testing.B) {
	client := newClient(bm)
	table := newTable(bm, client)
	ctx := context.Background()
	be, err := NewBackend(ctx, client, table)
	if err != nil {
		bm.Fatal(err)
	}
	for _, perCommit := range []int{10, 1} {
		s := backend.StreamID{AggregateType: "Bench", Key: "load-" + strconv.Itoa(perCommit)}
		ts := time.Now().UTC()
		for head := int64(0); head < 1000; head += int64(perCommit) {
			r := make([]backend.Record, perCommit)
			for i := range r {
				r[i] = backend.Record{Stream: s, Sequence: head + int64(i) + 1, EventType: "ItemAdded", Data: benchEvent,
					Timestamp: ts, Metadata: benchMeta}
			}
			if err := appendRecs(ctx, be, s, head, r); err != nil {
				bm.Fatal(err)
			}
		}
		fresh, err := NewBackend(ctx, client, table)
		if err != nil {
			bm.Fatal(err)
		}
		bm.Run(strconv.Itoa(1000/perCommit)+"x"+strconv.Itoa(perCommit)+"/Paired", func(bm *testing.B) {
			paired(bm, "raw", "ours", "load", func() error {
				_, err := rawLoad(ctx, client, table, s)
				return err
			}, func() error {
				for _, err := range fresh.Load(ctx, s, 0) {
					if err != nil {
						return err
					}
				}
				return nil
			})
		})
	}
}

// Pending and MarkPublished of 100 one-event commits over 100 streams, as a
// relay would take them: queries, the table's commits read by a
// hand-written strongly consistent Query per stream (what a relay without an
// outbox would have to do), against pending, one Pending(100) call.
func BenchmarkPending100(bm *testing.B) {
	client := newClient(bm)
	table := newTable(bm, client)
	ctx := context.Background()
	be, err := NewBackend(ctx, client, table)
	if err != nil {
		bm.Fatal(err)
	}
	var streams []backend.StreamID
	for i := range 100 {
		s := backend.StreamID{AggregateType: "Bench", Key: "pending-" + strconv.Itoa(i)}
		streams = append(streams, s)
		if err := appendRecs(ctx, be, s, 0, []backend.Record{{Stream: s, Sequence: 1, EventType: "ItemAdded", Data: benchEvent,
			Timestamp: time.Now().UTC(), Metadata: benchMeta}}); err != nil {
			bm.Fatal(err)
		}
	}
	paired(bm, "queries", "pending", "batch", func() error {
		for _, s := range streams {
			if _, err := rawLoad(ctx, client, table, s); err != nil {
				return err
			}
		}
		return nil
	}, func() error {
		n := 0
		for _, err := range be.Pending(ctx, 100) {
			if err != nil {
				return err
			}
			n++
		}
		if n != 100 {
			bm.Fatalf("Pending yielded %d commits", n)
		}
		return nil
	})
}

// rawLoad is a hand-written paged Query with a minimal decode, counting
// the records.
func rawLoad(ctx context.Context, client *ddb.Client, table string, s backend.StreamID) (int, error) {
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
func rawDecode(s backend.StreamID, item map[string]types.AttributeValue) []backend.Record {
	first, _ := strconv.ParseInt(item["seq"].(*types.AttributeValueMemberN).Value, 10, 64)
	ns, _ := strconv.ParseInt(item["tn"].(*types.AttributeValueMemberN).Value, 10, 64)
	ts := time.Unix(0, ns).UTC()
	id := item["id"].(*types.AttributeValueMemberS).Value
	var md backend.Metadata
	if m, ok := item["md"].(*types.AttributeValueMemberM); ok {
		md = make(backend.Metadata, len(m.Value))
		for k, v := range m.Value {
			md[k] = v.(*types.AttributeValueMemberS).Value
		}
	}
	evs := item["ev"].(*types.AttributeValueMemberL).Value
	out := make([]backend.Record, len(evs))
	for i, v := range evs {
		ev := v.(*types.AttributeValueMemberM).Value
		out[i] = backend.Record{Stream: s, Sequence: first + int64(i), Timestamp: ts, Metadata: md, CommitID: id,
			EventType: ev["t"].(*types.AttributeValueMemberS).Value,
			Data:      ev["d"].(*types.AttributeValueMemberB).Value}
	}
	return out
}
