// Package storetest is the conformance suite of the eventsourcing store
// contracts. A store or middleware package runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.RunBackend(t, func(t *testing.T) eventsourcing.Backend { return newBackend(t) })
//		storetest.RunEventStore(t, func(t *testing.T) eventsourcing.EventStore { return newStore(t) })
//	}
//
// RunBackend checks the byte-level Backend contract, RunEventStore checks an
// EventStore (a store, or a store wrapped in any stack of middleware) through
// real aggregates, and RunSnapshotStore checks a SnapshotStore. Each test gets
// a fresh store from the factory and uses its own stream keys, so the factory
// may return a shared store. Concurrency tests run real goroutines against
// one aggregate; run the suites under -race.
package storetest

import (
	"reflect"
	"testing"
	"time"
)

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

func deadline(t *testing.T) time.Duration {
	if d, ok := t.Deadline(); ok {
		return time.Until(d)
	}
	return 10 * time.Minute
}
