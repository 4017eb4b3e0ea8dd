package eventsourcing_test

import (
	"reflect"
	"testing"

	es "github.com/aggregatekit/eventsourcing"
)

type (
	ev1  struct{ N int }
	ev2  struct{ N int }
	ev3  struct{ N int }
	ev4  struct{ N int }
	ev5  struct{ N int }
	ev6  struct{ N int }
	ev7  struct{ N int }
	ev8  struct{ N int }
	ev9  struct{ N int }
	ev10 struct{ N int }
	ev11 struct{ N int }
	ev12 struct{ N int }
)

// TestRegistryLookups registers events one at a time, past the size at
// which lookups switch from a scan to the maps, and checks every lookup
// both ways after each registration, and the misses.
func TestRegistryLookups(t *testing.T) {
	events := []es.Event{ev1{}, ev2{}, ev3{}, ev4{}, ev5{}, ev6{}, ev7{}, ev8{}, ev9{}, ev10{}, ev11{}, ev12{}}
	reg := es.NewStandardEventRegistry("lookups")
	for n, e := range events {
		if err := reg.RegisterEvent(e); err != nil {
			t.Fatal(err)
		}
		for i, e := range events {
			typ := reflect.TypeOf(e)
			name, ok := reg.Name(typ)
			back, found := reg.Type(typ.Name())
			if registered := i <= n; ok != registered || found != registered {
				t.Fatalf("after %d registrations: %s found %v by type and %v by name, want %v", n+1, typ, ok, found, registered)
			}
			if i <= n && (name != typ.Name() || back != typ) {
				t.Fatalf("after %d registrations: %s is %q, %q is %v", n+1, typ, name, typ.Name(), back)
			}
			if p, ok := reg.Name(reflect.PointerTo(typ)); ok != (i <= n) || (ok && p != name) {
				t.Fatalf("after %d registrations: *%s is %q, %v", n+1, typ, p, ok)
			}
		}
		if _, ok := reg.Type("Unknown"); ok {
			t.Fatal("an unregistered name was found")
		}
		if _, ok := reg.Name(reflect.TypeFor[Deposit]()); ok {
			t.Fatal("an unregistered type was found")
		}
	}
}
