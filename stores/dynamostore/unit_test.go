package dynamostore

// Tests that need no server.

import (
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/aggregatekit/eventsourcing/backend"
)

// numberSize must bound DynamoDB's rule (1 byte per 2 significant digits,
// plus 1) for every magnitude, and decimalSize likewise for the numbers
// too large for an int64 that times take.
func TestNumberSize(t *testing.T) {
	for _, v := range []int64{0, 1, 9, 10, 99, 100, 12345, -1, -99, 1 << 53, 1<<63 - 1, -1 << 63} {
		digits := len(strconv.FormatInt(v, 10))
		if v < 0 {
			digits--
		}
		if got, lower := numberSize(v), (digits+1)/2+1; got < lower {
			t.Errorf("numberSize(%d) = %d, below %d", v, got, lower)
		}
		if numberSize(v) != decimalSize(strconv.FormatInt(v, 10)) {
			t.Errorf("decimalSize(%d) = %d, numberSize %d", v, decimalSize(strconv.FormatInt(v, 10)), numberSize(v))
		}
	}
	for _, s := range []string{"-62135596800000000000", "253402300799999999999"} {
		if got, lower := decimalSize(s), (len(strings.TrimPrefix(s, "-"))+1)/2+1; got < lower {
			t.Errorf("decimalSize(%s) = %d, below %d", s, got, lower)
		}
	}
}

// Every time from year 1 to 9999 survives the encoding to the nanosecond;
// the epoch and the zero time stay apart; anything else is refused.
func TestTimeEncoding(t *testing.T) {
	times := []time.Time{
		{}, time.Unix(0, 0), time.Unix(0, 1), time.Unix(0, -1), time.Unix(-1, 999999999),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), time.Date(1677, 9, 21, 0, 12, 43, 145224191, time.UTC),
		time.Date(1677, 9, 21, 0, 12, 43, 145224192, time.UTC), time.Date(2262, 4, 11, 23, 47, 16, 854775807, time.UTC),
		time.Date(2262, 4, 11, 23, 47, 16, 854775808, time.UTC), backend.MaxTime,
		time.Date(2026, 11, 30, 12, 0, 0, 123456789, time.FixedZone("X", -7*3600)),
	}
	r := rand.New(rand.NewPCG(3, 4))
	span := backend.MaxTime.Unix() - backend.MinTime.Unix()
	for range 20000 {
		times = append(times, time.Unix(backend.MinTime.Unix()+r.Int64N(span), r.Int64N(1e9)))
	}
	for _, want := range times {
		s := timeString(want)
		got, ok := parseTime(s)
		if !ok || !got.Equal(want) || got.IsZero() != want.IsZero() {
			t.Fatalf("%v: encoded %s, decoded %v (ok %v)", want, s, got, ok)
		}
		if len(s) > 22 {
			t.Fatalf("%v: %d digits", want, len(s))
		}
	}
	if s := timeString(time.Time{}); s != "-62135596800000000000" {
		t.Fatalf("zero time encoded as %s", s)
	}
	if s := timeString(time.Unix(0, 0)); s != "0" {
		t.Fatalf("epoch encoded as %s", s)
	}
	for _, bad := range []string{"", "-", "+1", "1.5", "1e9", " 1", "0x10", "--1", "1-", "-62135596800000000001",
		"253402300800000000000", "99999999999999999999999", strings.Repeat("9", 40)} {
		if got, ok := parseTime(bad); ok {
			t.Errorf("parseTime(%q) = %v, want refusal", bad, got)
		}
	}
}

func TestCheckSchema(t *testing.T) {
	def := func(name string, typ types.ScalarAttributeType) types.AttributeDefinition {
		return types.AttributeDefinition{AttributeName: aws.String(name), AttributeType: typ}
	}
	key := func(name string, typ types.KeyType) types.KeySchemaElement {
		return types.KeySchemaElement{AttributeName: aws.String(name), KeyType: typ}
	}
	index := func(name, hash, rng string) types.GlobalSecondaryIndexDescription {
		return types.GlobalSecondaryIndexDescription{IndexName: aws.String(name),
			KeySchema: []types.KeySchemaElement{key(hash, types.KeyTypeHash), key(rng, types.KeyTypeRange)}}
	}
	keys := []types.KeySchemaElement{key("stream", types.KeyTypeHash), key("seq", types.KeyTypeRange)}
	good := &types.TableDescription{
		AttributeDefinitions:   []types.AttributeDefinition{def("stream", "S"), def("seq", "N"), def("ob", "N"), def("obt", "N"), def("other", "S")},
		KeySchema:              keys,
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndexDescription{index("mine", "other", "seq"), index("outbox", "ob", "obt")},
	}
	for _, need := range []bool{true, false} {
		if has, err := checkSchema("t", good, need); err != nil || !has {
			t.Fatalf("good schema (index needed: %v): %v %v", need, has, err)
		}
	}
	noIndex := &types.TableDescription{AttributeDefinitions: good.AttributeDefinitions[:2], KeySchema: keys}
	if has, err := checkSchema("t", noIndex, false); err != nil || has {
		t.Fatalf("no index, not needed: %v %v", has, err)
	}
	for name, c := range map[string]struct {
		d    *types.TableDescription
		need bool
	}{
		"nil":       {nil, false},
		"empty":     {&types.TableDescription{}, false},
		"noRange":   {&types.TableDescription{AttributeDefinitions: good.AttributeDefinitions, KeySchema: keys[:1]}, false},
		"noDefs":    {&types.TableDescription{KeySchema: keys}, false},
		"wrongType": {&types.TableDescription{AttributeDefinitions: []types.AttributeDefinition{def("stream", "S"), def("seq", "B")}, KeySchema: keys}, false},
		"noIndex":   {noIndex, true},
		"indexKeys": {&types.TableDescription{AttributeDefinitions: good.AttributeDefinitions, KeySchema: keys,
			GlobalSecondaryIndexes: []types.GlobalSecondaryIndexDescription{index("outbox", "stream", "obt")}}, false},
		"indexTypes": {&types.TableDescription{AttributeDefinitions: []types.AttributeDefinition{def("stream", "S"), def("seq", "N"), def("ob", "S"), def("obt", "N")},
			KeySchema: keys, GlobalSecondaryIndexes: []types.GlobalSecondaryIndexDescription{index("outbox", "ob", "obt")}}, false},
	} {
		var se *SchemaError
		if _, err := checkSchema("t", c.d, c.need); !errors.As(err, &se) || !errors.Is(err, ErrTableSchema) || se.Problem == "" {
			t.Errorf("%s: got %v, want *SchemaError", name, err)
		}
	}
}

func TestShardsSpread(t *testing.T) {
	counts := make([]int, outboxShards)
	for i := range 4000 {
		s := shardOf("Order/order-" + strconv.Itoa(i))
		if s < 0 || s >= outboxShards {
			t.Fatalf("shard %d", s)
		}
		counts[s]++
	}
	for s, n := range counts {
		if n < 800 {
			t.Errorf("shard %d holds %d of 4000 streams", s, n)
		}
	}
}

// randomValue builds an arbitrary attribute value, biased toward the names
// and shapes the decoder looks at.
func randomValue(r *rand.Rand, depth int) types.AttributeValue {
	switch k := r.IntN(9); {
	case k == 0 && depth < 3:
		l := make([]types.AttributeValue, r.IntN(4))
		for i := range l {
			l[i] = randomValue(r, depth+1)
		}
		return &types.AttributeValueMemberL{Value: l}
	case k == 1 && depth < 3:
		return &types.AttributeValueMemberM{Value: randomItem(r, depth+1)}
	case k == 2:
		return &types.AttributeValueMemberB{Value: []byte{byte(r.IntN(256))}}
	case k == 3:
		return &types.AttributeValueMemberBOOL{Value: true}
	case k == 4:
		return &types.AttributeValueMemberNULL{Value: true}
	case k == 5:
		return &types.AttributeValueMemberS{Value: []string{"", "x", "Probe/k", "id-1", "has space"}[r.IntN(5)]}
	default:
		return &types.AttributeValueMemberN{Value: []string{"0", "1", "2", "3", "-1", "1.5", "1e40", "9223372036854775808",
			"-62135596800000000000", "253402300800000000000", "x"}[r.IntN(11)]}
	}
}

func randomItem(r *rand.Rand, depth int) map[string]types.AttributeValue {
	names := []string{attrStream, attrSeq, attrLast, attrCommitID, attrTime, attrMeta, attrEvents, attrShard, attrPendAt,
		evType, evData, evMeta, legacyTime, legacyCommitID, attrSnapSeq, attrSnapVersion, attrSnapState}
	m := map[string]types.AttributeValue{}
	for range r.IntN(len(names) + 1) {
		m[names[r.IntN(len(names))]] = randomValue(r, depth)
	}
	return m
}

// Whatever an item holds, decoding returns records or a
// *backend.CorruptError; it never panics.
func TestDecodeArbitraryItems(t *testing.T) {
	s := backend.StreamID{AggregateType: "Probe", Key: "k"}
	d := newDecoder("t", s)
	ss := &SnapshotStore{table: aws.String("t")}
	r := rand.New(rand.NewPCG(1, 2))
	decoded := 0
	for range 100000 {
		item := randomItem(r, 0)
		if r.IntN(2) == 0 {
			item[attrStream] = &types.AttributeValueMemberS{Value: s.String()}
		}
		c, err := d.commit(item)
		var ce *backend.CorruptError
		switch {
		case err == nil:
			decoded++
			if int64(len(c.records)) != c.last-c.first+1 {
				t.Fatalf("decoded %d records for %d..%d", len(c.records), c.first, c.last)
			}
		case !errors.As(err, &ce) || !errors.Is(err, backend.ErrCorruptStream) || ce.Stream != s || ce.Where == "":
			t.Fatalf("error %v is not a *backend.CorruptError naming the stream and item", err)
		}
		if _, err := ss.decode(s, item); err != nil && !errors.As(err, &ce) {
			t.Fatalf("snapshot decode error %v is not a *backend.CorruptError", err)
		}
	}
	// A valid item decodes, with its commit ID.
	c := commitOf(s, 6, []backend.Record{{Stream: s, Sequence: 7, EventType: "E", Data: []byte("x"), Timestamp: time.Unix(1, 2)}})
	got, err := d.commit(encodeCommit(s.String(), c, layoutOf(c.Records), &marker{shard: 1, at: 5}))
	if err != nil || len(got.records) != 1 || got.records[0].Sequence != 7 || got.records[0].CommitID != c.ID || got.id != c.ID || !got.pending {
		t.Fatalf("valid item: %+v %v", got, err)
	}
}
