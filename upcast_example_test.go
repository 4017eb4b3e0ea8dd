package eventsourcing_test

import (
	"encoding/json"
	"fmt"

	es "github.com/aggregatekit/eventsourcing"
)

// A field of an event changed: version 1 of Credit stored whole units in
// "Amount", version 2 stores "Cents". Old events are rewritten on load, in
// bytes, so the version 1 Go type is no longer needed. An even older name
// of the event joins the chain with a rename.
func ExampleStandardEventRegistry_RegisterUpcasters() {
	type CreditedV2 struct { // the current definition
		Cents int64
	}
	registry := es.NewStandardEventRegistry("wallet")
	_ = registry.RegisterEventAs(es.VersionedName("Credited", 2), CreditedV2{})
	err := registry.RegisterUpcasters(
		es.Upcaster{From: "MoneyIn", To: "Credited"}, // renamed, same data
		es.Upcaster{From: "Credited", To: es.VersionedName("Credited", 2),
			Func: es.UpcastJSON(func(f map[string]json.RawMessage) error {
				var units int64
				if err := json.Unmarshal(f["Amount"], &units); err != nil {
					return err
				}
				delete(f, "Amount")
				f["Cents"], _ = json.Marshal(units * 100)
				return nil
			})},
	)
	fmt.Println(err)

	for _, rec := range []es.Record{
		{EventType: "MoneyIn", Data: []byte(`{"Amount":1}`)},
		{EventType: "Credited", Data: []byte(`{"Amount":2}`)},
		{EventType: "Credited@v2", Data: []byte(`{"Cents":250}`)},
	} {
		e, err := es.DecodeEvent(registry, rec)
		fmt.Printf("%s: %+v %v\n", rec.EventType, e, err)
	}
	// Output:
	// <nil>
	// MoneyIn: {Cents:100} <nil>
	// Credited: {Cents:200} <nil>
	// Credited@v2: {Cents:250} <nil>
}

// Renaming a field and adding one with a default, on the stored JSON.
func ExampleUpcastJSON() {
	step := es.UpcastJSON(func(f map[string]json.RawMessage) error {
		f["Cents"] = f["Amount"]
		delete(f, "Amount")
		f["Currency"] = json.RawMessage(`"EUR"`)
		return nil
	})
	out, err := step([]byte(`{"Amount":12345678901234567890,"Memo":"rent"}`))
	fmt.Println(string(out), err)
	// Output: {"Cents":12345678901234567890,"Currency":"EUR","Memo":"rent"} <nil>
}
