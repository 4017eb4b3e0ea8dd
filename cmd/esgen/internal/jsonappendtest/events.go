// Package jsonappendtest holds aggregates whose events cover what cmd/esgen
// writes AppendJSON and DecodeJSON methods for and what it leaves to
// encoding/json. Its esgen_dispatch.go is regenerated and compared by the
// tests of cmd/esgen; the tests here compare every generated AppendJSON with
// json.Marshal, and every generated DecodeJSON with json.Unmarshal.
package jsonappendtest

import (
	"time"

	es "github.com/aggregatekit/eventsourcing"
)

//go:generate go run github.com/aggregatekit/eventsourcing/cmd/esgen

// Ledger replays every event of the package.
type Ledger struct {
	es.AggregateBase `json:"-"`
	N                int
}

// Audit replays Plain too: esgen writes its AppendJSON once.
type Audit struct {
	es.AggregateBase `json:"-"`
	N                int
}

// Events esgen writes AppendJSON and DecodeJSON for.
type (
	// Plain is the usual small event.
	Plain struct {
		Amount    int64
		Reference string
	}

	// Kinds has a field of every type esgen encodes.
	Kinds struct {
		S   string
		B   bool
		I   int
		I8  int8
		I16 int16
		I32 int32
		I64 int64
		U   uint
		U8  uint8
		U16 uint16
		U32 uint32
		U64 uint64
	}

	// OmitAll leaves out every field that is empty, the first included.
	OmitAll struct {
		S   string `json:",omitempty"`
		B   bool   `json:"b,omitempty"`
		I   int    `json:"i,omitempty"`
		I8  int8   `json:",omitempty"`
		U64 uint64 `json:"u64,omitempty"`
		T   string `json:"t,omitempty"`
		C   bool   `json:",omitempty"`
	}

	// Mixed has omitempty fields after one that is always written.
	Mixed struct {
		A int64
		B string `json:"b,omitempty"`
		C bool   `json:",omitempty"`
		D uint32 `json:"d,omitempty"`
		E bool
	}

	// Tagged has the tags encoding/json reads in a special way, and fields
	// it leaves out whatever their type.
	Tagged struct {
		Renamed   string  `json:"renamed"`
		Dash      int     `json:"-,"` // named "-"
		Skipped   float64 `json:"-"`
		HTML      string  `json:"a<b>&c"`
		Space     int     `json:"with space"`
		Punct     int     `json:"!#$%()*+-./:;=?@[]^_{|}~"`
		Quote     int     `json:"a\"b"` // not a valid name: "Quote"
		Backslash int     `json:"a\\b"` // not a valid name: "Backslash"
		Unicode   string  `json:"naïve_ключ"`
		Digits    int     `json:"123"`
		Empty     int     `json:""`    // "Empty"
		EmptyOpt  int     `json:"eo,"` // "eo"
		NoJSON    int     `xml:"x"`
		Other     int     `yaml:"y" json:"other"`
		Separator bool    `json:" "`
		A, B      int32   `json:",omitempty"`
		secret    float64
		hidden    map[string]time.Time
		_         int
	}

	// Nothing has no fields.
	Nothing struct{}

	// OnlyHidden has no field encoding/json writes.
	OnlyHidden struct {
		x int
		Y string `json:"-"`
	}

	// Pointed is replayed through a pointer.
	Pointed struct {
		ID   uint64 `json:"id"`
		Note string `json:"note,omitempty"`
	}
)

// Events esgen leaves to encoding/json, each for the reason in its name.
type (
	Float    struct{ Price float64 }
	Time     struct{ At time.Time }
	Named    struct{ C Cents }
	Pointer  struct{ P *int }
	Slice    struct{ S []string }
	Map      struct{ M map[string]int }
	Embedded struct {
		Plain // whose AppendJSON is promoted, and must not be used
		Extra string
	}
	StringOpt struct {
		N int64 `json:",string"`
	}
	OmitZero struct {
		N int `json:",omitzero"`
	}
	UnknownOpt struct {
		N int `json:",omitEmpty"`
	}
	MarshalJSON   struct{ N int }
	MarshalText   struct{ N int }
	UnmarshalJSON struct{ N int }
	UnmarshalText struct{ N int }
	Duplicate     struct {
		A int
		B int `json:"A"`
	}
	Generic[T any] struct{ V T }
	NotStruct      string
	FieldClash     struct{ AppendJSON int }
	DecodeClash    struct{ DecodeJSON int }
	// HandWritten has its own AppendJSON, which esgen keeps.
	HandWritten struct{ N int }
	// HandDecoded has its own DecodeJSON, which esgen keeps.
	HandDecoded struct{ N int }
)

// Cents is a named integer type.
type Cents int64
