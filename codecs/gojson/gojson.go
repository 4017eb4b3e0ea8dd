// Package gojson is an eventsourcing.Codec built on github.com/goccy/go-json,
// a drop-in replacement of encoding/json that decodes typed values several
// times faster. It writes the same JSON as eventsourcing.JSONCodec and reads
// what JSONCodec wrote (and the other way round), so a store can switch
// codecs without migrating its events; it keeps int64 and uint64 to the last
// digit, times to the nanosecond, embedded structs and the json struct tags,
// as the tests of this package check against JSONCodec.
//
//	registry := eventsourcing.NewStandardEventRegistry("bank", eventsourcing.WithCodec(gojson.Codec{}))
//
// It is its own module so that only applications that choose it download
// the library. See docs/PERFORMANCE.md for what it saves on loads and commits.
package gojson

import (
	"reflect"

	json "github.com/goccy/go-json"

	es "github.com/aggregatekit/eventsourcing"
)

// Codec encodes with github.com/goccy/go-json. The zero value is ready to
// use and safe for concurrent use.
type Codec struct{}

// Marshal encodes v.
func (Codec) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal decodes data into v, a pointer.
func (Codec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// CheckType refuses, at registration, an event type whose values would be
// stored as {} (see eventsourcing.JSONCodec.CheckType: the rule is the
// same, since the two codecs see the same fields).
func (Codec) CheckType(t reflect.Type) error { return es.JSONCodec{}.CheckType(t) }

var (
	_ es.Codec       = Codec{}
	_ es.TypeChecker = Codec{}
)
