package main

import (
	"bytes"
	"strings"
	"testing"
)

const sample = `goos: linux
pkg: github.com/aggregatekit/eventsourcing/tools/bench/peers
BenchmarkNewInstance/us-2 	  497679	      300 ns/op	       200 cpu-ns/op	     400 B/op	       2 allocs/op
BenchmarkNewInstance/us-2 	  497679	      100 ns/op	       250 cpu-ns/op	     400 B/op	       2 allocs/op
BenchmarkNewInstance/us-2 	  497679	      200 ns/op	       300 cpu-ns/op	     400 B/op	       2 allocs/op
BenchmarkNewInstance/hallgren-2          	 3195050	       50 ns/op	        40 cpu-ns/op	      64 B/op	       1 allocs/op
BenchmarkNewInstance/goes-2          	 3195050	       40 ns/op	        80 cpu-ns/op	      64 B/op	       4 allocs/op
BenchmarkRebuild10000/us-2                        	      18	 1000000 ns/op	  1000000 cpu-ns/op	 2645027 B/op	   60014 allocs/op
BenchmarkRebuild10000/hallgren-2                  	       9	 3000000 ns/op	  2000000 cpu-ns/op	10451372 B/op	  100023 allocs/op
BenchmarkRebuild10000/goes-2                      	      18	  500000 ns/op	   400000 cpu-ns/op	 4225549 B/op	   30080 allocs/op
BenchmarkRebuild10000/goes-json-2                 	       5	 4000000 ns/op	  4000000 cpu-ns/op	10701630 B/op	  170076 allocs/op
PASS
`

func TestParseMedians(t *testing.T) {
	res, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	us := res.get("NewInstance", "us")
	if us == nil {
		t.Fatal("no NewInstance/us")
	}
	if got := us.median("ns/op"); got != 200 {
		t.Errorf("median wall %v, want 200", got)
	}
	if got := us.median("cpu-ns/op"); got != 250 {
		t.Errorf("median cpu %v, want 250", got)
	}
	if got := us.median("allocs/op"); got != 2 {
		t.Errorf("median allocs %v, want 2", got)
	}
	if order := res.workloads; len(order) != 2 || order[0] != "NewInstance" || order[1] != "Rebuild10000" {
		t.Errorf("workloads %v, want NewInstance then Rebuild10000", order)
	}
}

func TestFastestPeer(t *testing.T) {
	res, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	// NewInstance has no -json variants: goes counts, and is fastest by wall
	// time, hallgren by CPU time.
	if p, v := res.fastest("NewInstance", "cpu-ns/op", true); p != "hallgren" || v != 40 {
		t.Errorf("fastest CPU %s %v, want hallgren 40", p, v)
	}
	if p, v := res.fastest("NewInstance", "ns/op", true); p != "goes" || v != 40 {
		t.Errorf("fastest wall %s %v, want goes 40", p, v)
	}
	// Rebuild has goes-json: the stock goes store, which does not encode, is
	// left out of the fair comparison but kept in the other.
	if p, _ := res.fastest("Rebuild10000", "cpu-ns/op", true); p != "hallgren" {
		t.Errorf("fastest fair CPU %s, want hallgren", p)
	}
	if p, _ := res.fastest("Rebuild10000", "cpu-ns/op", false); p != "goes" {
		t.Errorf("fastest CPU of all %s, want goes", p)
	}
}

func TestTable(t *testing.T) {
	res, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	write(&out, res, "hallgren v0.9.1")
	got := out.String()
	for _, want := range []string{
		"| new instance ready | us | 250 ns | hallgren 40 ns | 6.25x |",
		"| rebuild from 10,000 events | us | 1.00 ms | hallgren 2.00 ms | 0.50x |",
		"hallgren v0.9.1",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	if _, err := parse(strings.NewReader("BenchmarkX/us-2 12 abc ns/op\n")); err == nil {
		t.Fatal("no error for a malformed value")
	}
	if _, err := parse(strings.NewReader("PASS\n")); err == nil {
		t.Fatal("no error for output without benchmarks")
	}
}
