// Command benchreport turns `go test -bench` output (several -count runs)
// into the Markdown tables of docs/PERFORMANCE.md: the median of every
// benchmark's ns/op, B/op and allocs/op, the ratios that paired benchmarks
// report (units such as "ours/raw"), each next to the target the project set
// for it, and the parallel speed-up.
//
//	go run ./cmd/benchreport < bench.txt                  # print the tables
//	go run ./cmd/benchreport -doc PERFORMANCE.md -cmd 'make bench' < bench.txt
//
// With -doc it replaces the part of the file between the lines
// "<!-- bench:begin -->" and "<!-- bench:end -->" with the tables, the
// machine they were measured on and the command that produced them.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// targets maps a benchmark name (without the -N CPU suffix) and ratio unit
// to the target set for it by the issues.
var targets = map[string]string{
	"BenchmarkRebuild/paired library/handwritten":                       "<= 1.3",
	"BenchmarkRebuild/paired-manual manual/handwritten":                 "<= 1.3",
	"BenchmarkAppend/interleaved store/raw":                             "<= 1.2",
	"BenchmarkAppend/existing-stream-interleaved store/raw":             "<= 1.2",
	"BenchmarkAppend/Paired ours/raw":                                   "<= 1.2",
	"BenchmarkSnapshotScaling large/small":                              "<= 1.5",
	"parallel speed-up (8 aggregates / 1, BenchmarkParallelAggregates)": ">= 1.7 on 2 cores",
}

// machine collects the goos/goarch/cpu header lines of the bench output.
var machine []string

type bench struct {
	pkg, name string
	metrics   map[string][]float64 // unit -> one value per run
}

var cpuSuffix = regexp.MustCompile(`-\d+$`)

func parse(r io.Reader) []*bench {
	var out []*bench
	byKey := map[string]*bench{}
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, h := range []string{"goos: ", "goarch: ", "cpu: "} {
			if strings.HasPrefix(line, h) && !slices.Contains(machine, line) {
				machine = append(machine, line)
			}
		}
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimPrefix(strings.TrimSpace(p), "github.com/aggregatekit/eventsourcing")
			if pkg == "" {
				pkg = "(root)"
			}
			pkg = strings.TrimPrefix(pkg, "/")
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := cpuSuffix.ReplaceAllString(f[0], "")
		key := pkg + " " + name
		b := byKey[key]
		if b == nil {
			b = &bench{pkg: pkg, name: name, metrics: map[string][]float64{}}
			byKey[key] = b
			out = append(out, b)
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			b.metrics[f[i+1]] = append(b.metrics[f[i+1]], v)
		}
	}
	return out
}

func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func human(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.2f µs", ns/1e3)
	default:
		return fmt.Sprintf("%.0f ns", ns)
	}
}

// isRatio tells a dimensionless ratio unit ("ours/raw") from a rate
// ("ns/op", "raw-ns/append").
func isRatio(unit string) bool {
	return strings.Contains(unit, "/") && !strings.Contains(unit, "ns") && unit != "B/op" && unit != "allocs/op"
}

func main() {
	doc := flag.String("doc", "", "Markdown file whose bench:begin/bench:end section to replace")
	cmd := flag.String("cmd", "", "the command that produced the input, for the report")
	flag.Parse()
	var buf bytes.Buffer
	report(&buf, parse(os.Stdin))
	if *doc == "" {
		os.Stdout.Write(buf.Bytes())
		return
	}
	if err := splice(*doc, *cmd, buf.String()); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

const begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"

func splice(path, cmd, tables string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	i, j := bytes.Index(old, []byte(begin)), bytes.Index(old, []byte(end))
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %s ... %s section", path, begin, end)
	}
	var sec strings.Builder
	fmt.Fprintf(&sec, "%s\n\nMeasured %s with `%s` (%s, %d CPUs",
		begin, time.Now().UTC().Format("2006-01-02"), cmd, runtime.Version(), runtime.NumCPU())
	for _, m := range machine {
		sec.WriteString(", " + m)
	}
	sec.WriteString("). Medians over the runs; times vary with the load of the shared machine, ratios from paired benchmarks much less.\n\n")
	sec.WriteString(tables)
	sec.WriteString("\n")
	out := append(append(slices.Clip(old[:i]), sec.String()...), old[j:]...)
	return os.WriteFile(path, out, 0o644)
}

func report(out io.Writer, benches []*bench) {
	w := bufio.NewWriter(out)
	defer w.Flush()
	fmt.Fprintln(w, "| package | benchmark | time/op | B/op | allocs/op | runs |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|")
	for _, b := range benches {
		ns := b.metrics["ns/op"]
		fmt.Fprintf(w, "| %s | %s | %s | %.0f | %.0f | %d |\n", b.pkg, strings.TrimPrefix(b.name, "Benchmark"),
			human(median(ns)), median(b.metrics["B/op"]), median(b.metrics["allocs/op"]), len(ns))
	}

	fmt.Fprintln(w)
	fmt.Fprintln(w, "| ratio | package | median | range | target |")
	fmt.Fprintln(w, "|---|---|---:|---|---|")
	for _, b := range benches {
		units := make([]string, 0, len(b.metrics))
		for u := range b.metrics {
			if isRatio(u) {
				units = append(units, u)
			}
		}
		slices.Sort(units)
		for _, u := range units {
			vs := b.metrics[u]
			label := b.name + " " + u
			fmt.Fprintf(w, "| %s %s | %s | %.3f | %.3f–%.3f | %s |\n", strings.TrimPrefix(b.name, "Benchmark"), u, b.pkg,
				median(vs), slices.Min(vs), slices.Max(vs), targets[label])
		}
	}
	var one, eight float64
	for _, b := range benches {
		switch b.name {
		case "BenchmarkParallelAggregates/goroutines=1":
			one = median(b.metrics["ns/op"])
		case "BenchmarkParallelAggregates/goroutines=8":
			eight = median(b.metrics["ns/op"])
		}
	}
	if one > 0 && eight > 0 {
		label := "parallel speed-up (8 aggregates / 1, BenchmarkParallelAggregates)"
		fmt.Fprintf(w, "| %s | (root) | %.2f | | %s |\n", label, one/eight, targets[label])
	}
}
