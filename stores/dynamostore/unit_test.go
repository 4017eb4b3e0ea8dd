package dynamodb

// Tests that need no server.

import (
	"errors"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	es "github.com/aggregatekit/eventsourcing"
)

// numberSize must bound DynamoDB's rule (1 byte per 2 significant digits,
// plus 1) for every magnitude.
func TestNumberSize(t *testing.T) {
	for _, v := range []int64{0, 1, 9, 10, 99, 100, 12345, -1, -99, 1 << 53, 1<<63 - 1, -1 << 63} {
		digits := len(strconv.FormatInt(v, 10))
		if v < 0 {
			digits--
		}
		if got, lower := numberSize(v), (digits+1)/2+1; got < lower {
			t.Errorf("numberSize(%d) = %d, below %d", v, got, lower)
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
	good := &types.TableDescription{
		AttributeDefinitions: []types.AttributeDefinition{def("stream", "S"), def("seq", "N"), def("other", "S")},
		KeySchema:            []types.KeySchemaElement{key("stream", types.KeyTypeHash), key("seq", types.KeyTypeRange)},
	}
	if err := checkSchema("t", good); err != nil {
		t.Fatalf("good schema: %v", err)
	}
	for name, d := range map[string]*types.TableDescription{
		"nil":       nil,
		"empty":     {},
		"noRange":   {AttributeDefinitions: good.AttributeDefinitions, KeySchema: good.KeySchema[:1]},
		"noDefs":    {KeySchema: good.KeySchema},
		"wrongType": {AttributeDefinitions: []types.AttributeDefinition{def("stream", "S"), def("seq", "B")}, KeySchema: good.KeySchema},
	} {
		var se *SchemaError
		if err := checkSchema("t", d); !errors.As(err, &se) || !errors.Is(err, ErrTableSchema) || se.Problem == "" {
			t.Errorf("%s: got %v, want *SchemaError", name, err)
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
		return &types.AttributeValueMemberS{Value: []string{"", "x", "Probe/k"}[r.IntN(3)]}
	default:
		return &types.AttributeValueMemberN{Value: []string{"0", "1", "2", "3", "-1", "1.5", "1e40", "9223372036854775808", "x"}[r.IntN(9)]}
	}
}

func randomItem(r *rand.Rand, depth int) map[string]types.AttributeValue {
	names := []string{attrStream, attrSeq, attrLast, attrCommitID, attrTime, attrMeta, attrEvents, evType, evData, evMeta, attrSnapSeq, attrSnapVersion, attrSnapState}
	m := map[string]types.AttributeValue{}
	for range r.IntN(len(names) + 1) {
		m[names[r.IntN(len(names))]] = randomValue(r, depth)
	}
	return m
}

// Whatever an item holds, decoding returns records or a *CorruptItemError;
// it never panics.
func TestDecodeArbitraryItems(t *testing.T) {
	s := es.StreamID{AggregateType: "Probe", Key: "k"}
	d := decoder{table: "t", stream: s, pk: s.String()}
	ss := &SnapshotStore{table: aws.String("t")}
	r := rand.New(rand.NewPCG(1, 2))
	decoded := 0
	for range 100000 {
		item := randomItem(r, 0)
		if r.IntN(2) == 0 {
			item[attrStream] = &types.AttributeValueMemberS{Value: s.String()}
		}
		c, err := d.commit(item)
		var ce *CorruptItemError
		switch {
		case err == nil:
			decoded++
			if int64(len(c.records)) != c.last-c.first+1 {
				t.Fatalf("decoded %d records for %d..%d", len(c.records), c.first, c.last)
			}
		case !errors.As(err, &ce) || !errors.Is(err, es.ErrCorruptStream):
			t.Fatalf("error %v is not a *CorruptItemError", err)
		}
		if _, err := ss.decode(s, item); err != nil && !errors.As(err, &ce) {
			t.Fatalf("snapshot decode error %v is not a *CorruptItemError", err)
		}
	}
	// A valid item decodes.
	recs := []es.Record{{Stream: s, Sequence: 7, EventType: "E", Data: []byte("x"), Timestamp: time.Unix(1, 2)}}
	c, err := d.commit(encodeCommit(s.String(), recs, layoutOf(recs), newCommitID()))
	if err != nil || len(c.records) != 1 || c.records[0].Sequence != 7 {
		t.Fatalf("valid item: %+v %v", c, err)
	}
}
