// Command peertable reads the output of the peer benchmarks (go test -bench
// in tools/bench/peers, any -count) on standard input and prints, as
// Markdown, the ratio of our median to the fastest peer's median for each
// workload, in CPU time (cpu-ns/op) and in wall time (ns/op), followed by
// every library's medians.
//
//	go test -run '^$' -bench . -benchmem -count 5 | go run ./cmd/peertable -versions "..."
//
// A peer measured over both its own memory store and over a store of the
// benchmark module that encodes JSON ("goes" and "goes-json") counts only
// with the encoding store in the main comparison, since ours encodes; the
// last column compares with every peer store.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

func main() {
	versions := flag.String("versions", "", "the peers' versions, printed above the table")
	flag.Parse()
	res, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "peertable:", err)
		os.Exit(1)
	}
	write(os.Stdout, res, *versions)
}

// results are the measurements of one or more benchmark runs.
type results struct {
	workloads []string                   // in order of first appearance
	libs      map[string][]string        // workload -> libraries, in order of first appearance
	runs      map[string]map[string]*lib // workload -> library -> measurements
}

// lib holds one library's measurements of one workload: every value of
// every unit, one per run.
type lib struct{ values map[string][]float64 }

func (r *results) get(workload, name string) *lib { return r.runs[workload][name] }

// median returns the median of unit's values, or NaN if there are none.
func (l *lib) median(unit string) float64 {
	v := slices.Clone(l.values[unit])
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// spread returns the largest distance of a value from the median, as a
// fraction of the median.
func (l *lib) spread(unit string) float64 {
	m := l.median(unit)
	var d float64
	for _, v := range l.values[unit] {
		d = max(d, math.Abs(v-m))
	}
	return d / m
}

// parse reads benchmark output lines of the form
// "BenchmarkW/L-P  N  V1 U1  V2 U2 ...", ignoring every other line.
func parse(r io.Reader) (*results, error) {
	res := &results{libs: map[string][]string{}, runs: map[string]map[string]*lib{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || strings.HasSuffix(f[0], ":") {
			continue
		}
		workload, name, ok := strings.Cut(strings.TrimPrefix(f[0], "Benchmark"), "/")
		if !ok {
			continue // not a per-library sub-benchmark
		}
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i] // the GOMAXPROCS suffix
			}
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			return nil, fmt.Errorf("line %d: iterations %q: %w", line, f[1], err)
		}
		if len(f)%2 != 0 {
			return nil, fmt.Errorf("line %d: values and units do not pair up: %q", line, sc.Text())
		}
		if res.runs[workload] == nil {
			res.runs[workload] = map[string]*lib{}
			res.workloads = append(res.workloads, workload)
		}
		l := res.runs[workload][name]
		if l == nil {
			l = &lib{values: map[string][]float64{}}
			res.runs[workload][name] = l
			res.libs[workload] = append(res.libs[workload], name)
		}
		for i := 2; i < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: value %q: %w", line, f[i], err)
			}
			l.values[f[i+1]] = append(l.values[f[i+1]], v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(res.workloads) == 0 {
		return nil, errors.New("no benchmark results in the input")
	}
	return res, nil
}

// ours reports whether a sub-benchmark measures this repository's library.
func ours(name string) bool { return name == "us" || strings.HasPrefix(name, "us-") }

// fastest returns the peer with the lowest median of unit in workload. With
// fair set, a peer's stock store is skipped when the same peer was also
// measured over a JSON-encoding store (name + "-json").
func (r *results) fastest(workload, unit string, fair bool) (string, float64) {
	best, bestV := "", math.Inf(1)
	for _, name := range r.libs[workload] {
		if ours(name) {
			continue
		}
		if fair && r.runs[workload][name+"-json"] != nil {
			continue
		}
		if v := r.runs[workload][name].median(unit); v < bestV {
			best, bestV = name, v
		}
	}
	return best, bestV
}

var titles = map[string]string{
	"NewInstance":  "new instance ready",
	"FreshCommand": "one command on a fresh aggregate",
	"Command1000":  "one command on an aggregate with 1,000 events",
	"Rebuild10000": "rebuild from 10,000 events",
	"WarmCommand":  "warm command (instance kept)",
}

func title(workload string) string {
	if t, ok := titles[workload]; ok {
		return t
	}
	return workload
}

// duration formats nanoseconds.
func duration(ns float64) string {
	switch {
	case math.IsNaN(ns) || math.IsInf(ns, 0):
		return "-"
	case ns < 1e3:
		return fmt.Sprintf("%.0f ns", ns)
	case ns < 1e6:
		return fmt.Sprintf("%.2f µs", ns/1e3)
	default:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	}
}

func ratio(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 || math.IsInf(b, 0) {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

// count is the number of runs behind the medians (the most values of any
// measurement).
func (r *results) count() int {
	n := 0
	for _, libs := range r.runs {
		for _, l := range libs {
			n = max(n, len(l.values["ns/op"]))
		}
	}
	return n
}

func write(w io.Writer, r *results, versions string) {
	if versions != "" {
		fmt.Fprintf(w, "Peers: %s.\n\n", versions)
	}
	fmt.Fprintf(w, "Medians of %d runs. CPU is the process's user+system CPU time per op; wall is ns/op. "+
		"A ratio below 1 means we are faster. The fastest peer is chosen among the stores that encode JSON "+
		"(hallgren, eventhorizon-json, goes-json; for new instances, every peer); the last column counts "+
		"the stock eventhorizon and goes memory stores too, which keep event values without encoding.\n\n", r.count())
	fmt.Fprintln(w, "| workload | ours | CPU | fastest peer (CPU) | us/peer CPU | wall | fastest peer (wall) | us/peer wall | allocs/op us / peer | us/fastest of all (CPU) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	for _, wl := range r.workloads {
		cpuPeer, cpuV := r.fastest(wl, "cpu-ns/op", true)
		wallPeer, wallV := r.fastest(wl, "ns/op", true)
		anyPeer, anyV := r.fastest(wl, "cpu-ns/op", false)
		for _, name := range r.libs[wl] {
			if !ours(name) {
				continue
			}
			l := r.runs[wl][name]
			cpu, wall := l.median("cpu-ns/op"), l.median("ns/op")
			peerAllocs := math.NaN()
			if p := r.runs[wl][cpuPeer]; p != nil {
				peerAllocs = p.median("allocs/op")
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s %s | %s | %s | %s %s | %s | %s / %s | %s (%s) |\n",
				title(wl), name, duration(cpu), cpuPeer, duration(cpuV), ratio(cpu, cpuV),
				duration(wall), wallPeer, duration(wallV), ratio(wall, wallV),
				allocs(l.median("allocs/op")), allocs(peerAllocs), ratio(cpu, anyV), anyPeer)
		}
	}

	fmt.Fprintf(w, "\nEvery library's medians: CPU per op (±: the largest distance of a run from the median), wall per op, allocs/op.\n\n")
	fmt.Fprintln(w, "| workload | library | CPU | ± | wall | ± | allocs/op | B/op |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, wl := range r.workloads {
		for _, name := range r.libs[wl] {
			l := r.runs[wl][name]
			fmt.Fprintf(w, "| %s | %s | %s | %.0f%% | %s | %.0f%% | %s | %s |\n", title(wl), name,
				duration(l.median("cpu-ns/op")), 100*l.spread("cpu-ns/op"),
				duration(l.median("ns/op")), 100*l.spread("ns/op"),
				allocs(l.median("allocs/op")), allocs(l.median("B/op")))
		}
	}
}

func allocs(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}
