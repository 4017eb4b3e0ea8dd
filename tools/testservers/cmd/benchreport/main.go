// Command benchreport turns `go test -bench` output (several -count runs)
// into the Markdown tables of docs/PERFORMANCE.md: the median of every
// benchmark's time, CPU time, B/op, allocs/op and other metrics, the ratios
// that paired benchmarks report (units such as "store/raw"), each next to
// the target the project set for it, and the parallel speed-up.
//
//	go run ./cmd/benchreport < bench.txt                  # print the tables
//	go run ./cmd/benchreport -doc PERFORMANCE.md -cmd 'make bench' < bench.txt
//	go run ./cmd/benchreport -doc PERFORMANCE.md -section peers -cmd peers.sh < peers.md
//
// With -doc it replaces the part of the file between the lines
// "<!-- SECTION:begin -->" and "<!-- SECTION:end -->" with the tables (or,
// for a -section other than bench, with its input, already Markdown), the
// date, the machine and the command that produced them.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// targets maps "package benchmark unit" (benchmark without the -N CPU
// suffix) to the target set for it by the issues.
var targets = map[string]string{
	"(root) BenchmarkRebuild/paired library/handwritten":                               "<= 1.3 (met by the generated path: paired-generated)",
	"(root) BenchmarkRebuild/paired-generated generated/handwritten":                   "<= 1.3",
	"(root) BenchmarkRebuild/paired-manual manual/handwritten":                         "<= 1.3",
	"(root) parallel speed-up":                                                         "none (an earlier 2.49x claim did not reproduce)",
	"middleware/snapshot BenchmarkSnapshotScaling large/small":                         "<= 1.5",
	"stores/mongostore BenchmarkAppend/new-stream-vs-raw store/raw":                    "<= 1.2",
	"stores/mongostore BenchmarkAppend/existing-stream-vs-raw store/raw":               "<= 1.2",
	"stores/dynamostore BenchmarkAppend/Paired ours/raw":                               "<= 1.2",
	"stores/pgstore BenchmarkAppend/new-stream store/raw":                              "<= 1.2",
	"stores/pgstore BenchmarkAppend/existing-stream store/raw":                         "<= 1.2",
	"stores/sqlitestore BenchmarkAppend/synchronous=FULL/events=1 ours/raw":            "<= 1.2",
	"stores/sqlitestore BenchmarkAppend/synchronous=NORMAL/events=1 ours/raw":          "<= 1.2",
	"internal/integration BenchmarkContention/DynamoDB/commands=160 events-loaded/cmd": "flat in the number of commands",
	"internal/integration BenchmarkContention/DynamoDB/commands=480 events-loaded/cmd": "flat in the number of commands",
	"internal/integration BenchmarkContention/DynamoDB/commands=960 events-loaded/cmd": "flat in the number of commands",
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

// isRatio tells a dimensionless ratio unit ("store/raw", "attempts/cmd")
// from a time, a rate or a size ("cpu-ns/op", "commits/s", "B/op").
func isRatio(unit string) bool {
	if !strings.Contains(unit, "/") || strings.HasSuffix(unit, "/op") || strings.HasSuffix(unit, "/s") {
		return false
	}
	for _, t := range []string{"ns", "µs", "us/", "ms", "s/run"} {
		if strings.Contains(unit, t) {
			return false
		}
	}
	return true
}

func main() {
	doc := flag.String("doc", "", "Markdown file whose section to replace")
	section := flag.String("section", "bench", "the section: bench (stdin is go test -bench output) or another name (stdin is Markdown)")
	cmd := flag.String("cmd", "", "the command that produced the input, for the report")
	flag.Parse()
	var buf bytes.Buffer
	if *section == "bench" {
		report(&buf, parse(os.Stdin))
	} else if _, err := io.Copy(&buf, os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
	if *doc == "" {
		os.Stdout.Write(buf.Bytes())
		return
	}
	if err := splice(*doc, *section, *cmd, buf.String()); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func splice(path, section, cmd, body string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	begin, end := "<!-- "+section+":begin -->", "<!-- "+section+":end -->"
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
	if section == "bench" {
		sec.WriteString("). Medians over the runs; times vary with the load of the shared machine, ratios from paired benchmarks much less.\n\n")
	} else {
		sec.WriteString(").\n\n")
	}
	sec.WriteString(strings.TrimSpace(body))
	sec.WriteString("\n\n")
	out := append(append(slices.Clip(old[:i]), sec.String()...), old[j:]...)
	return os.WriteFile(path, out, 0o644)
}

// cell formats the median of a metric for the table, or "" if absent.
func cell(b *bench, unit string) string {
	vs := b.metrics[unit]
	if len(vs) == 0 {
		return ""
	}
	if unit == "ns/op" || unit == "cpu-ns/op" {
		return human(median(vs))
	}
	return fmt.Sprintf("%.0f", median(vs))
}

// number formats a metric's median with about three significant digits.
func number(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

func report(out io.Writer, benches []*bench) {
	w := bufio.NewWriter(out)
	defer w.Flush()
	fmt.Fprintln(w, "| package | benchmark | time/op | CPU/op | B/op | allocs/op | other metrics (medians) | runs |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---|---:|")
	standard := []string{"ns/op", "cpu-ns/op", "B/op", "allocs/op"}
	for _, b := range benches {
		var other []string
		for _, u := range slices.Sorted(maps.Keys(b.metrics)) {
			if !slices.Contains(standard, u) && !isRatio(u) {
				other = append(other, number(median(b.metrics[u]))+" "+u)
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %d |\n", b.pkg, strings.TrimPrefix(b.name, "Benchmark"),
			cell(b, "ns/op"), cell(b, "cpu-ns/op"), cell(b, "B/op"), cell(b, "allocs/op"),
			strings.Join(other, ", "), len(b.metrics["ns/op"]))
	}

	fmt.Fprintln(w)
	fmt.Fprintln(w, "| ratio | package | median | range | target |")
	fmt.Fprintln(w, "|---|---|---:|---|---|")
	for _, b := range benches {
		for _, u := range slices.Sorted(maps.Keys(b.metrics)) {
			if !isRatio(u) {
				continue
			}
			vs := b.metrics[u]
			fmt.Fprintf(w, "| %s %s | %s | %.3f | %.3f–%.3f | %s |\n", strings.TrimPrefix(b.name, "Benchmark"), u, b.pkg,
				median(vs), slices.Min(vs), slices.Max(vs), targets[b.pkg+" "+b.name+" "+u])
		}
	}
	var one, eight float64
	for _, b := range benches {
		if b.pkg != "(root)" {
			continue
		}
		switch b.name {
		case "BenchmarkParallelAggregates/goroutines=1":
			one = median(b.metrics["ns/op"])
		case "BenchmarkParallelAggregates/goroutines=8":
			eight = median(b.metrics["ns/op"])
		}
	}
	if one > 0 && eight > 0 {
		fmt.Fprintf(w, "| parallel speed-up (ns/op of 1 goroutine on 1 aggregate / 8 on 8, BenchmarkParallelAggregates) | (root) | %.2f | | %s |\n",
			one/eight, targets["(root) parallel speed-up"])
	}
}
