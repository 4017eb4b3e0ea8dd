// Command httpbench measures the counter example (examples/counter) over
// HTTP with the vegeta load generator (github.com/tsenart/vegeta/v12, as a
// library), beside a bare gin handler that keeps counters in a map behind a
// mutex: the ceiling an HTTP front end of the same framework reaches on this
// machine. Both servers run as their own processes, started and stopped by
// this program, and are measured in the same run, one after the other, with
// the same clients: by default 16 clients, each sending its next request as
// soon as the previous one is answered, first spread over 100 counters and
// then all on one hot counter.
//
//	cd tools/bench/peers && GOWORK=off go run ./cmd/httpbench -repo ../../..
//
// It prints, per server and scenario, the requests per second answered with
// a success status, the median and 99th-percentile latencies, the server's
// CPU time per request (user+system, from /proc, so Linux only) and the
// example's share of the ceiling's throughput. Everything runs on loopback.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "httpbench:", err)
		os.Exit(1)
	}
}

type config struct {
	repo        string
	duration    time.Duration
	warmup      time.Duration
	clients     int
	counters    int
	rounds      int
	exampleArgs []string
	ceiling     string // -serve-ceiling: serve the ceiling on this address instead
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	var extra string
	fs := flag.NewFlagSet("httpbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.repo, "repo", ".", "root of the repository (the directory holding go.work and examples/counter)")
	fs.DurationVar(&c.duration, "duration", 5*time.Second, "measured length of each attack")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "unmeasured attack before each measured one")
	fs.IntVar(&c.clients, "clients", 16, "concurrent clients (vegeta workers), each with one request in flight")
	fs.IntVar(&c.counters, "counters", 100, "counters of the spread scenario")
	fs.IntVar(&c.rounds, "rounds", 1, "times to repeat every measurement; medians are reported")
	fs.StringVar(&extra, "example-args", "", "more arguments for the example server, space-separated")
	fs.StringVar(&c.ceiling, "serve-ceiling", "", "internal: serve the bare gin ceiling on this address")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.exampleArgs = strings.Fields(extra)
	switch {
	case c.duration <= 0 || c.warmup < 0:
		return c, errors.New("-duration must be positive and -warmup not negative")
	case c.clients < 1 || c.counters < 1 || c.rounds < 1:
		return c, errors.New("-clients, -counters and -rounds must be at least 1")
	}
	return c, nil
}

func run(args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if cfg.ceiling != "" {
		return serveCeiling(cfg.ceiling, stdout)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	dir, err := os.MkdirTemp("", "httpbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	fmt.Fprintln(stderr, "building the counter example...")
	bin := filepath.Join(dir, "counter")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./examples/counter")
	build.Dir, build.Stdout, build.Stderr = cfg.repo, stderr, stderr
	build.Env = append(os.Environ(), "GOWORK=") // the repository's go.work, even when run with GOWORK=off
	if err := build.Run(); err != nil {
		return fmt.Errorf("building examples/counter in %s: %w", cfg.repo, err)
	}

	example, err := startServer(ctx, dir, "example", bin, append([]string{"-store", "memory"}, cfg.exampleArgs...),
		func(addr string) []string { return []string{"-addr", addr} })
	if err != nil {
		return err
	}
	defer example.stop()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ceiling, err := startServer(ctx, dir, "ceiling", self, nil,
		func(addr string) []string { return []string{"-serve-ceiling", addr} })
	if err != nil {
		return err
	}
	defer ceiling.stop()

	scenarios := []scenario{
		{name: fmt.Sprintf("%d counters", cfg.counters), counters: cfg.counters},
		{name: "1 hot counter", counters: 1},
	}
	servers := []*server{example, ceiling}
	results := map[string][]measurement{} // server + scenario -> one per round
	for round := 1; round <= cfg.rounds; round++ {
		for _, sc := range scenarios {
			for _, srv := range servers {
				if err := ctx.Err(); err != nil {
					return err
				}
				fmt.Fprintf(stderr, "round %d/%d: %s, %s, %d clients...\n", round, cfg.rounds, srv.name, sc.name, cfg.clients)
				if cfg.warmup > 0 {
					if _, err := attack(srv, sc, cfg.clients, cfg.warmup); err != nil {
						return err
					}
				}
				m, err := attack(srv, sc, cfg.clients, cfg.duration)
				if err != nil {
					return err
				}
				results[srv.name+"|"+sc.name] = append(results[srv.name+"|"+sc.name], m)
			}
		}
	}
	report(stdout, cfg, scenarios, servers, results)
	return nil
}

// server is a server process this program started.
type server struct {
	name string
	base string // http://host:port
	pid  int
	cmd  *exec.Cmd
	done chan struct{}
}

// startServer runs bin with args followed by "-addr"-style arguments from
// addrArgs (given a free loopback address), its output in a log file under
// dir, and waits until the address accepts connections.
func startServer(ctx context.Context, dir, name, bin string, args []string, addrArgs func(addr string) []string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, append(slices.Clone(args), addrArgs(addr)...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "GIN_MODE=release")
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	s := &server{name: name, base: "http://" + addr, pid: cmd.Process.Pid, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(s.done) }()
	deadline := time.After(60 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return s, nil
		}
		select {
		case <-s.done:
			out, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("%s exited before listening on %s: %s", name, addr, tail(out))
		case <-deadline:
			s.stop()
			return nil, fmt.Errorf("%s did not listen on %s in 60 s", name, addr)
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func tail(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return strings.Join(lines, "\n")
}

// stop interrupts the server, and kills it if it has not exited in 10 s.
func (s *server) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// cpu returns the user+system CPU time the server process has used, from
// /proc/PID/stat.
func (s *server) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// the fields after the last ')' start with field 3.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc stat: %q", b)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc stat: %q", b)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	const ticksPerSecond = 100 // USER_HZ, 100 on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond, nil
}

type scenario struct {
	name     string
	counters int
}

// measurement is one attack's outcome.
type measurement struct {
	rate     float64 // successful requests per second
	p50, p99 time.Duration
	success  float64 // fraction of requests answered with 2xx
	codes    map[string]int
	cpuPer   time.Duration // server CPU time per request
	errors   []string
}

// attack sends POST /counters/NAME/increment requests from clients
// concurrent clients for d, spreading them round-robin over the scenario's
// counters.
func attack(srv *server, sc scenario, clients int, d time.Duration) (measurement, error) {
	urls := make([]string, sc.counters)
	for i := range urls {
		name := "hot"
		if sc.counters > 1 {
			name = fmt.Sprintf("c%03d", i)
		}
		urls[i] = srv.base + "/counters/" + name + "/increment"
	}
	var next atomic.Uint64
	targeter := vegeta.Targeter(func(t *vegeta.Target) error {
		t.Method = http.MethodPost
		t.URL = urls[(next.Add(1)-1)%uint64(len(urls))]
		t.Body, t.Header = nil, nil
		return nil
	})
	attacker := vegeta.NewAttacker(
		vegeta.Workers(uint64(clients)), vegeta.MaxWorkers(uint64(clients)),
		vegeta.Timeout(10*time.Second), vegeta.KeepAlive(true),
	)
	cpu0, err := srv.cpu()
	if err != nil {
		return measurement{}, err
	}
	var metrics vegeta.Metrics
	for res := range attacker.Attack(targeter, vegeta.Rate{Freq: 0}, d, srv.name) {
		metrics.Add(res)
	}
	metrics.Close()
	cpu1, err := srv.cpu()
	if err != nil {
		return measurement{}, err
	}
	if metrics.Requests == 0 {
		return measurement{}, fmt.Errorf("%s: no request was sent", srv.name)
	}
	return measurement{
		rate:    metrics.Throughput,
		p50:     metrics.Latencies.P50,
		p99:     metrics.Latencies.P99,
		success: metrics.Success,
		codes:   metrics.StatusCodes,
		cpuPer:  (cpu1 - cpu0) / time.Duration(metrics.Requests),
		errors:  metrics.Errors,
	}, nil
}

func median[T int64 | float64 | time.Duration](v []T) T {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func pick[T any](ms []measurement, f func(measurement) T) []T {
	out := make([]T, len(ms))
	for i, m := range ms {
		out[i] = f(m)
	}
	return out
}

func report(w io.Writer, cfg config, scenarios []scenario, servers []*server, results map[string][]measurement) {
	fmt.Fprintf(w, "HTTP: POST /counters/NAME/increment, %d clients (vegeta v12.13.0 workers, one request in flight each, no rate limit), "+
		"%s measured after %s of warm-up, median of %d round(s). example: go build ./examples/counter, run with -store memory %s; "+
		"ceiling: a bare gin handler (gin v1.12.0, release mode, no middleware) incrementing a map under a mutex. "+
		"Server CPU: the server process's user+system CPU time per request (10 ms ticks).\n\n",
		cfg.clients, cfg.duration, cfg.warmup, cfg.rounds, strings.Join(cfg.exampleArgs, " "))
	fmt.Fprintln(w, "| scenario | server | req/s | p50 | p99 | server CPU/req | success | example/ceiling req/s |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, sc := range scenarios {
		for _, srv := range servers {
			ms := results[srv.name+"|"+sc.name]
			rate := median(pick(ms, func(m measurement) float64 { return m.rate }))
			ratio := ""
			if srv.name == "example" && len(servers) == 2 {
				ceil := median(pick(results[servers[1].name+"|"+sc.name], func(m measurement) float64 { return m.rate }))
				if ceil > 0 {
					ratio = fmt.Sprintf("%.2fx", rate/ceil)
				}
			}
			fmt.Fprintf(w, "| %s | %s | %.0f | %s | %s | %s | %.2f%% | %s |\n", sc.name, srv.name, rate,
				round(median(pick(ms, func(m measurement) time.Duration { return m.p50 }))),
				round(median(pick(ms, func(m measurement) time.Duration { return m.p99 }))),
				round(median(pick(ms, func(m measurement) time.Duration { return m.cpuPer }))),
				100*median(pick(ms, func(m measurement) float64 { return m.success })), ratio)
		}
	}
	var notes []string
	for key, ms := range results {
		for _, m := range ms {
			for code, n := range m.codes {
				if !strings.HasPrefix(code, "2") {
					notes = append(notes, fmt.Sprintf("%s: %d responses with status %s", key, n, code))
				}
			}
			for _, e := range m.errors {
				notes = append(notes, fmt.Sprintf("%s: %s", key, e))
			}
		}
	}
	slices.Sort(notes)
	notes = slices.Compact(notes)
	for _, n := range notes {
		fmt.Fprintln(w, "\nnote:", n)
	}
}

func round(d time.Duration) string {
	switch {
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	case d >= time.Microsecond:
		return d.Round(100 * time.Nanosecond).String()
	}
	return d.String()
}

// serveCeiling serves ceilingHandler on addr until interrupted.
func serveCeiling(addr string, stdout io.Writer) error {
	gin.SetMode(gin.ReleaseMode)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ceiling listening on http://%s\n", ln.Addr())
	srv := &http.Server{Handler: ceilingHandler(), ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// ceilingHandler is the bare gin ceiling: POST /counters/:name/increment
// adds one to the named counter in a map behind a mutex and answers with
// the counter as the example does.
func ceilingHandler() http.Handler {
	var mu sync.Mutex
	counts := map[string]int64{}
	r := gin.New()
	r.POST("/counters/:name/increment", func(c *gin.Context) {
		name := c.Param("name")
		mu.Lock()
		counts[name]++
		n := counts[name]
		mu.Unlock()
		c.JSON(http.StatusOK, gin.H{"name": name, "count": n, "sequence": n})
	})
	return r
}
