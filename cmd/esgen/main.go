// Command esgen writes, for the aggregates of a package, the methods that let
// eventsourcing.AggregateBase call their Handle and Replay methods directly
// instead of through reflection: DispatchCommand (eventsourcing.CommandDispatcher)
// and DispatchEvent (eventsourcing.EventDispatcher). The Handle<Command> and
// Replay<Event> methods stay the source of truth; esgen only writes the type
// switches that call them, and AutomaticWireup uses those when they exist.
//
// Run it from the package directory, typically through go generate:
//
//	//go:generate go run github.com/aggregatekit/eventsourcing/cmd/esgen
//
// It reads the package's non-test .go files, finds every struct type that
// embeds eventsourcing.AggregateBase, and writes esgen_dispatch.go (see -o)
// with both methods for each. Flags:
//
//	-o file       output file name (default esgen_dispatch.go)
//	-types A,B    only these aggregate types (default: all)
//
// Rerun it whenever a Handle or Replay method is added, removed or changes
// its parameter type; a method esgen does not know about is still found by
// AutomaticWireup and called by reflection, so a stale file is slower, never
// wrong, except that a method removed from the aggregate no longer compiles.
//
// It also writes, for each event a Replay method takes, an AppendJSON method
// (eventsourcing.JSONAppender) with which JSONCodec encodes the event without
// reflection, to the bytes json.Marshal writes, and a DecodeJSON method
// (eventsourcing.JSONDecoder) with which it decodes the event as
// json.Unmarshal does: without reflection for an object of the form
// AppendJSON writes (whitespace and the order of the keys aside), with
// json.Unmarshal for any other input. Both call package
// github.com/aggregatekit/eventsourcing/esjson, imported as esjson. It does so
// only where the source alone tells what encoding/json writes and reads: a
// struct type of the package, without type parameters, MarshalJSON,
// MarshalText, UnmarshalJSON or UnmarshalText methods, embedded fields, or two
// fields of the same JSON name, whose exported fields are of the predeclared
// types string, bool, int, int8 to int64 and uint, uint8 to uint64, with json
// tags of a name, "-" and omitempty only. Unexported fields and fields tagged
// "-" may be of any type. The other events are listed, with the reason, in a
// comment at the end of the file. Next to each AppendJSON a declaration
// restates the struct type, so that a change to its fields or tags fails to
// compile until esgen is rerun, instead of leaving out a field.
//
// For an aggregate some of whose events get DecodeJSON, it writes
// ApplyJSONEvent (eventsourcing.JSONEventApplier) too: a type switch that
// decodes such an event into a local value with its DecodeJSON and calls
// the Replay method, which a load through JSONCodec uses instead of making
// the value by reflection.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

func main() {
	out := flag.String("o", "esgen_dispatch.go", "output file")
	types := flag.String("types", "", "comma-separated aggregate types (default: every struct embedding eventsourcing.AggregateBase)")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: esgen [-o file] [-types A,B]  (in the package directory)")
		flag.PrintDefaults()
	}
	flag.Parse()
	var only []string
	if *types != "" {
		only = strings.Split(*types, ",")
	}
	src, err := generate(".", *out, only)
	if err != nil {
		fmt.Fprintln(os.Stderr, "esgen:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "esgen:", err)
		os.Exit(1)
	}
}
