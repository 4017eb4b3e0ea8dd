package gojson_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/codecs/gojson"
	"github.com/aggregatekit/eventsourcing/internal/probe"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

// Every kind of field survives, and the bytes are interchangeable with
// encoding/json's in both directions.
func TestLosslessAndCompatible(t *testing.T) {
	want := probe.SampleKinds()
	var c gojson.Codec
	ours, err := c.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	std, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"written by gojson": ours, "written by encoding/json": std} {
		var got probe.AllKinds
		if err := c.Unmarshal(data, &got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		probe.CheckKinds(t, got, want)
		var viaStd probe.AllKinds
		if err := json.Unmarshal(data, &viaStd); err != nil {
			t.Fatalf("%s, read by encoding/json: %v", name, err)
		}
		probe.CheckKinds(t, viaStd, want)
	}
	var a, b any
	_ = json.Unmarshal(ours, &a)
	_ = json.Unmarshal(std, &b)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("the two codecs write different JSON:\n%s\n%s", ours, std)
	}
}

func TestRefusesTypesStoredAsEmpty(t *testing.T) {
	type hidden struct{ n int } //lint:ignore U1000 exists to be refused
	reg := es.NewStandardEventRegistry("t", es.WithCodec(gojson.Codec{}))
	if err := reg.RegisterEvent(hidden{}); err == nil {
		t.Fatal("a type with no exported field was registered")
	}
}

// An aggregate round trip through a store, with the codec.
func TestThroughAStore(t *testing.T) {
	ctx := context.Background()
	reg := es.NewStandardEventRegistry("probe", es.WithCodec(gojson.Codec{}))
	if err := reg.RegisterEvent(probe.Added{}, probe.KindsRecorded{}, probe.Unencodable{}); err != nil {
		t.Fatal(err)
	}
	store := es.NewStore(memory.NewBackend())
	p, err := probe.New("k", "", reg, store)
	if err != nil {
		t.Fatal(err)
	}
	want := probe.SampleKinds()
	if err := p.Handle(ctx, probe.RecordKinds{Kinds: want}); err != nil {
		t.Fatal(err)
	}
	q, _ := probe.New("k", "", reg, store)
	if err := q.Refresh(ctx); err != nil || q.Kinds == nil {
		t.Fatalf("reload: %v", err)
	}
	probe.CheckKinds(t, *q.Kinds, want)
}
