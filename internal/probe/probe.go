// Package probe holds the fixtures of the conformance suites and of this
// repository's tests: the Probe aggregate, its events and commands, and
// AllKinds, a value with one field of every kind a codec must round-trip.
package probe

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
)

// Inner is a nested struct used by AllKinds.
type Inner struct {
	Name  string
	Value int64
	When  time.Time
}

// Embedded is embedded in AllKinds to check that promoted fields survive.
type Embedded struct {
	EmbeddedID    string
	EmbeddedCount int64
}

// AllKinds holds one field of every kind the codec must round-trip exactly.
type AllKinds struct {
	Embedded
	Big         int64
	Negative    int64
	Unsigned    uint64
	Float       float64
	Text        string
	Bytes       []byte
	Time        time.Time
	Duration    time.Duration
	Flag        bool
	Nested      Inner
	Slice       []Inner
	NestedSlice [][]int64
	Map         map[string]Inner
	Pointer     *Inner
	NilPointer  *Inner
}

// SampleKinds returns an AllKinds whose values break lossy codecs: integers
// above 2^53, nanosecond times, non-ASCII text, nested collections.
func SampleKinds() AllKinds {
	t := time.Date(2026, 11, 22, 19, 45, 1, 123456789, time.UTC)
	return AllKinds{
		Embedded:    Embedded{EmbeddedID: "emb-1", EmbeddedCount: 1<<53 + 1},
		Big:         1<<62 + 7,
		Negative:    -(1<<60 + 3),
		Unsigned:    1<<64 - 1,
		Float:       0.1 + 0.2,
		Text:        "héllo, 世界 \u2028 \"quoted\" \x01",
		Bytes:       []byte{0, 1, 2, 0xff, 0xfe},
		Time:        t,
		Duration:    90*time.Minute + 5*time.Nanosecond,
		Flag:        true,
		Nested:      Inner{Name: "nested", Value: 1<<55 + 1, When: t.Add(time.Nanosecond)},
		Slice:       []Inner{{Name: "a", Value: 1}, {Name: "b", Value: 1<<63 - 1}},
		NestedSlice: [][]int64{{1, 2}, {}, {1<<62 + 1}},
		Map:         map[string]Inner{"x": {Name: "x", Value: -1}, "ünï": {Name: "u", Value: 1 << 60}},
		Pointer:     &Inner{Name: "ptr", Value: 1<<54 + 3},
	}
}

// Added is the event of the Probe aggregate: one numbered item of a batch.
type Added struct {
	ID    string // unique per event
	Batch string // the command that raised it
	Index int    // position within the batch
	Size  int    // size of the batch
}

// KindsRecorded carries an AllKinds.
type KindsRecorded struct {
	Kinds AllKinds
}

// Unencodable cannot be encoded by the JSON codec (it holds a channel); a
// commit containing it must store nothing.
type Unencodable struct {
	C chan int
}

// Add asks a Probe to raise Size Added events with IDs Batch-0, Batch-1, ...
type Add struct {
	Batch string
	Size  int
}

// RecordKinds asks a Probe to raise KindsRecorded.
type RecordKinds struct {
	Kinds AllKinds
}

// AddThenFail raises one Added event followed by an Unencodable one.
type AddThenFail struct {
	Batch string
}

// Reject is refused by its handler with ErrRejected.
type Reject struct{}

// ErrRejected is returned by the Probe's Reject handler.
var ErrRejected = fmt.Errorf("probe: command rejected")

// NewRegistry returns a registry that knows the Probe's events.
func NewRegistry() *es.StandardEventRegistry {
	r := es.NewStandardEventRegistry("probe")
	if err := r.RegisterEvent(Added{}, KindsRecorded{}, Unencodable{}); err != nil {
		panic(err) // static, cannot fail
	}
	return r
}

// Probe is the aggregate the suites drive. It records every event it
// replays so that tests can check order, completeness and duplicates.
type Probe struct {
	es.AggregateBase `json:"-"`
	Count            int64
	IDs              []string
	Kinds            *AllKinds
}

// New returns a wired Probe of aggregate type aggType (the Go type name if
// empty) on store.
func New(key, aggType string, registry es.EventRegistry, store es.EventStore) (*Probe, error) {
	p := &Probe{}
	p.Initialize(key, registry, store, func() any { return p })
	if aggType != "" {
		p.SetAggregateType(aggType)
	}
	p.IgnoreEvents(Unencodable{}) // never stored: it fails to encode
	return p, p.AutomaticWireup(p)
}

// HandleAdd raises Size Added events.
func (p *Probe) HandleAdd(_ context.Context, c Add) ([]es.Event, error) {
	if c.Size < 1 {
		return nil, fmt.Errorf("probe: batch size %d", c.Size)
	}
	events := make([]es.Event, c.Size)
	for i := range events {
		events[i] = Added{ID: fmt.Sprintf("%s-%d", c.Batch, i), Batch: c.Batch, Index: i, Size: c.Size}
	}
	return events, nil
}

// HandleRecordKinds raises KindsRecorded.
func (p *Probe) HandleRecordKinds(c *RecordKinds) ([]es.Event, error) {
	return []es.Event{&KindsRecorded{Kinds: c.Kinds}}, nil
}

// HandleAddThenFail raises an encodable and then an unencodable event.
func (p *Probe) HandleAddThenFail(c AddThenFail) ([]es.Event, error) {
	return []es.Event{Added{ID: c.Batch + "-0", Batch: c.Batch, Size: 2}, Unencodable{C: make(chan int)}}, nil
}

// HandleReject always fails.
func (p *Probe) HandleReject(Reject) ([]es.Event, error) { return nil, ErrRejected }

// ReplayAdded records the event.
func (p *Probe) ReplayAdded(e Added) {
	p.Count++
	p.IDs = append(p.IDs, e.ID)
}

// ReplayKindsRecorded keeps the latest kinds.
func (p *Probe) ReplayKindsRecorded(e *KindsRecorded) {
	p.Count++
	k := e.Kinds
	p.Kinds = &k
}

// normalizeKinds returns k with every time in UTC, so that DeepEqual compares
// instants rather than location pointers.
func normalizeKinds(k AllKinds) AllKinds {
	k.Time = k.Time.UTC()
	k.Nested.When = k.Nested.When.UTC()
	if k.Slice != nil {
		s := make([]Inner, len(k.Slice))
		for i, in := range k.Slice {
			in.When = in.When.UTC()
			s[i] = in
		}
		k.Slice = s
	}
	if k.Map != nil {
		m := make(map[string]Inner, len(k.Map))
		for key, in := range k.Map {
			in.When = in.When.UTC()
			m[key] = in
		}
		k.Map = m
	}
	if k.Pointer != nil {
		p := *k.Pointer
		p.When = p.When.UTC()
		k.Pointer = &p
	}
	return k
}

// CheckKinds fails t unless got equals want field for field (times compared
// as instants).
func CheckKinds(t testing.TB, got, want AllKinds) {
	t.Helper()
	g, w := normalizeKinds(got), normalizeKinds(want)
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("round trip lost data:\n got  %#v\n want %#v", g, w)
	}
	if !got.Time.Equal(want.Time) || got.Time.Nanosecond() != want.Time.Nanosecond() {
		t.Fatalf("time lost precision: got %v want %v", got.Time, want.Time)
	}
}
