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
