package esjson_test

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/aggregatekit/eventsourcing/esjson"
)

// Renamed is an event with hand-written AppendJSON and DecodeJSON methods,
// like those cmd/esgen writes.
type Renamed struct {
	ID   int64  `json:"id"`
	Name string `json:"name,omitempty"`
	Seen bool   `json:"seen"`
}

// AppendJSON appends the bytes json.Marshal returns for e.
func (e Renamed) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendInt(dst, e.ID, 10)
	if e.Name != "" {
		dst = append(dst, `,"name":`...)
		dst = esjson.AppendString(dst, e.Name)
	}
	dst = append(dst, `,"seen":`...)
	dst = strconv.AppendBool(dst, e.Seen)
	return append(dst, '}')
}

// DecodeJSON leaves *e as json.Unmarshal(data, e) would: it reads the plain
// form of what AppendJSON writes, and hands anything else to encoding/json.
func (e *Renamed) DecodeJSON(data []byte) error {
	x, r := *e, esjson.ReadObject(data)
	for r.Next() {
		switch string(r.Key()) {
		case "id":
			x.ID = r.Int(64)
		case "name":
			x.Name = r.Str()
		case "seen":
			x.Seen = r.Bool()
		default:
			r.Fail() // another key, or one that matches only in another case
		}
	}
	if !r.Done() {
		return r.Unmarshal(e)
	}
	*e = x
	return nil
}

func Example() {
	e := Renamed{ID: 7, Name: "<Ada & Bob>"}
	b := e.AppendJSON(nil)
	std, _ := json.Marshal(e)
	fmt.Printf("%s\nsame as encoding/json: %t\n", b, string(b) == string(std))

	for _, data := range []string{
		` { "seen": true, "id": -1 } `, // read by the ObjectReader
		`{"Name":"x","id":2.5}`,        // another case, a fraction: encoding/json
		`{"id":"2"}`,                   // encoding/json too
	} {
		var got Renamed
		err := got.DecodeJSON([]byte(data))
		fmt.Printf("%+v, error: %t\n", got, err != nil)
	}
	// Output:
	// {"id":7,"name":"\u003cAda \u0026 Bob\u003e","seen":false}
	// same as encoding/json: true
	// {ID:-1 Name: Seen:true}, error: false
	// {ID:0 Name:x Seen:false}, error: true
	// {ID:0 Name: Seen:false}, error: true
}
