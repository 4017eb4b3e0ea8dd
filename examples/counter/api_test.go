package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

// apiResponse holds any JSON body the API returns.
type apiResponse struct {
	CounterView
	Status string `json:"status"`
	Error  string `json:"error"`
}

// testLogger writes errors to the test's output (shown on failure or with
// -v). Below Error, the logging middleware reports every conflict, which the
// concurrent tests provoke by the hundred.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
}

// defaultConfig is the configuration of a server started without flags or
// environment, with its SQLite file in a directory of the test's own.
func defaultConfig(t *testing.T) config {
	t.Helper()
	cfg, err := parseConfig(nil, func(string) (string, bool) { return "", false }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg.SQLitePath = filepath.Join(t.TempDir(), "counter.db")
	return cfg
}

// openTestStore opens the store stack of cfg, as the server does, and closes
// it when the test ends.
func openTestStore(t *testing.T, cfg config) es.EventStore {
	return openTestStack(t, cfg).store
}

func openTestStack(t *testing.T, cfg config) *stack {
	t.Helper()
	st, err := openStore(t.Context(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.close(); err != nil {
			t.Errorf("closing the store: %v", err)
		}
	})
	return st
}

// startServerWithList serves the API over the store stack of cfg, with the
// list of counters kept from its feed as run does.
func startServerWithList(t *testing.T, cfg config) *client {
	t.Helper()
	st := openTestStack(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	list, wait, err := startList(ctx, st, testLogger(t))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); wait() }) // runs before the store closes
	counters := newTestCounters(t, st.store, cfg.MaxCount, exampleRetryPolicy()).withList(list)
	srv := httptest.NewServer(newRouter(counters, testLogger(t), 5*time.Second))
	t.Cleanup(srv.Close)
	return &client{t: t, base: srv.URL, http: srv.Client()}
}

// client talks to a real HTTP server running the API.
type client struct {
	t    *testing.T
	base string
	http *http.Client
}

// startServer serves the API over store on a real loopback listener.
func startServer(t *testing.T, store es.EventStore, max int64, retry es.RetryPolicy) *client {
	t.Helper()
	srv := httptest.NewServer(newRouter(newTestCounters(t, store, max, retry), testLogger(t), 5*time.Second))
	t.Cleanup(srv.Close)
	transport := srv.Client().Transport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 32 // keep connections alive for concurrent clients
	t.Cleanup(transport.CloseIdleConnections)
	return &client{t: t, base: srv.URL, http: &http.Client{Transport: transport}}
}

// do sends a request and decodes the JSON response, failing the test if it
// is not JSON. It is safe for concurrent use.
func (c *client) do(method, path, body string) (int, apiResponse) {
	c.t.Helper()
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	var out apiResponse
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		c.t.Fatalf("%s %s: Content-Type %q, body %q", method, path, ct, raw)
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		c.t.Fatalf("%s %s: %d, body %q is not JSON: %v", method, path, resp.StatusCode, raw, err)
	}
	if resp.StatusCode != http.StatusOK && out.Error == "" {
		c.t.Fatalf("%s %s: %d without an error message: %q", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

// getJSON decodes the 200 answer of GET path into v.
func (c *client) getJSON(path string, v any) {
	c.t.Helper()
	resp, err := c.http.Get(c.base + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		c.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		c.t.Fatal(err)
	}
}

// expect sends a request and checks the status code.
func (c *client) expect(status int, method, path, body string) apiResponse {
	c.t.Helper()
	got, out := c.do(method, path, body)
	if got != status {
		c.t.Fatalf("%s %s %q: status %d (%+v), want %d", method, path, body, got, out, status)
	}
	return out
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	c := startServer(t, es.NewStore(memory.NewBackend()), 10, exampleRetryPolicy())

	if out := c.expect(200, "GET", "/healthz", ""); out.Status != "ok" {
		t.Errorf("healthz = %+v", out)
	}
	c.expect(404, "GET", "/counters/a", "")
	c.expect(404, "GET", "/nope", "")
	c.expect(404, "POST", "/counters/a/decrement", "")
	c.expect(405, "GET", "/counters/a/increment", "")
	c.expect(404, "GET", "/counters/", "")
	c.expect(404, "GET", "/counters/a/", "")
	c.expect(404, "POST", "/counters/a/increment/", "")
	c.expect(400, "POST", "/counters//increment", "")

	if out := c.expect(200, "POST", "/counters/a/increment", ""); out.CounterView != (CounterView{"a", 1, 1}) {
		t.Errorf("first increment = %+v", out)
	}
	if out := c.expect(200, "POST", "/counters/a/increment", ` {"by": 5} `); out.CounterView != (CounterView{"a", 6, 2}) {
		t.Errorf("increment by 5 = %+v", out)
	}
	for _, body := range []string{"{}", "null", "\n"} {
		c.expect(200, "POST", "/counters/b/increment", body)
	}
	if out := c.expect(200, "GET", "/counters/b", ""); out.CounterView != (CounterView{"b", 3, 3}) {
		t.Errorf("counter b = %+v, want 3 increments by 1", out)
	}

	badBodies := []string{
		"{", "[]", "1", `"by"`, `{"by": 0}`, `{"by": -1}`, `{"by": 1001}`, `{"by": 1.5}`, `{"by": 1e2}`,
		`{"by": "2"}`, `{"by": null, "x": 1}`, `{"count": 3}`, `{"by": 1} {}`, `{"by": 1} x`,
		`{"by": 99999999999999999999}`, "\xff",
		`{"BY": 5}`, `{"By": 5}`, `{"by": 1, "by": 2}`, `{"by": null, "by": 3}`, `{"by": true}`, `{"by": {}}`, `[{"by": 1}]`,
	}
	for _, body := range badBodies {
		c.expect(400, "POST", "/counters/a/increment", body)
	}
	for _, name := range []string{strings.Repeat("n", 65), "a.b", "caf%C3%A9", "a%20b", "%00"} {
		c.expect(400, "POST", "/counters/"+name+"/increment", "")
		c.expect(400, "GET", "/counters/"+name, "")
	}
	c.expect(200, "POST", "/counters/"+strings.Repeat("n", 64)+"/increment", "")
	c.expect(200, "POST", "/counters/Az09_-/increment", "")

	c.expect(413, "POST", "/counters/a/increment", `{"by": 1`+strings.Repeat(" ", maxBodyBytes)+"}")
	c.expect(200, "POST", "/counters/a/increment", `{"by": 1`+strings.Repeat(" ", maxBodyBytes-10)+"}")

	// The maximum is 10 and a is at 7.
	if out := c.expect(422, "POST", "/counters/a/increment", `{"by": 4}`); !strings.Contains(out.Error, "maximum") {
		t.Errorf("422 error = %q", out.Error)
	}
	c.expect(200, "POST", "/counters/a/increment", `{"by": 3}`)
	c.expect(422, "POST", "/counters/a/increment", "")
	if out := c.expect(200, "GET", "/counters/a", ""); out.CounterView != (CounterView{"a", 10, 4}) {
		t.Errorf("counter a = %+v; refused requests must store nothing", out)
	}
}

// failingStore loads normally but every commit fails with err.
type failingStore struct {
	es.EventStore
	err error
}

func (s failingStore) Commit(context.Context, es.Commit) error { return s.err }

// panickingStore panics on every load.
type panickingStore struct{ es.EventStore }

func (panickingStore) Refresh(context.Context, es.Loader) error { panic("store exploded") }

func TestConflictAfterRetriesIs409(t *testing.T) {
	t.Parallel()
	store := failingStore{es.NewStore(memory.NewBackend()), fmt.Errorf("another writer won: %w", es.ErrConcurrency)}
	c := startServer(t, store, 10, fastRetry)
	if out := c.expect(409, "POST", "/counters/a/increment", ""); !strings.Contains(out.Error, "gave up after 3 attempts") {
		t.Errorf("409 error = %q", out.Error)
	}
}

func TestServerFaultsAre500(t *testing.T) {
	t.Parallel()
	for name, store := range map[string]es.EventStore{
		"error": failingStore{es.NewStore(memory.NewBackend()), errors.New("disk on fire")},
		"panic": panickingStore{es.NewStore(memory.NewBackend())},
	} {
		t.Run(name, func(t *testing.T) {
			c := startServer(t, store, 10, fastRetry)
			out := c.expect(500, "POST", "/counters/a/increment", "")
			if out.Error != "internal server error" {
				t.Errorf("500 error = %q; details belong in the log, not the response", out.Error)
			}
			if status, _ := c.do("GET", "/healthz", ""); status != 200 && status != 500 { // the server survived
				t.Errorf("healthz: %d", status)
			}
		})
	}
}

// A commit whose outcome the store could not learn is a 500 that tells the
// client to read before retrying, since the increment may have been applied.
func TestUnknownOutcomeIs500WithAdvice(t *testing.T) {
	t.Parallel()
	store := failingStore{es.NewStore(memory.NewBackend()), fmt.Errorf("connection reset: %w", es.ErrUnknownOutcome)}
	c := startServer(t, store, 10, fastRetry)
	out := c.expect(500, "POST", "/counters/a/increment", "")
	if !strings.Contains(out.Error, "may or may not have been applied") {
		t.Errorf("500 error = %q; want the advice to read before retrying", out.Error)
	}
}

// TestConcurrentIncrements has 16 clients increment one counter 100 times
// each through real HTTP. Conflicts are expected and retried; whatever the
// outcome of each request, the stored counter must account for exactly the
// requests that got 200.
func TestConcurrentIncrements(t *testing.T) {
	t.Parallel()
	store := openTestStore(t, defaultConfig(t)) // memory, with the server's middleware
	c := startServer(t, store, 1_000_000, exampleRetryPolicy())
	hammer(t, c, "hot", 16, 100)
}

// hammer runs clients goroutines that each increment name times times (by
// 1, 2 or 3) and checks the final state against the 200 responses: count is
// the sum of their increments, sequence their number, and each success saw
// a distinct sequence. Only 200 and 409 are acceptable answers.
func hammer(t *testing.T, c *client, name string, clients, times int) {
	t.Helper()
	var (
		mu        sync.Mutex
		sum       int64
		sequences []int64
		conflicts int
		wg        sync.WaitGroup
	)
	for i := range clients {
		by := int64(1 + i%3)
		wg.Go(func() {
			for range times {
				status, out := c.do("POST", "/counters/"+name+"/increment", fmt.Sprintf(`{"by": %d}`, by))
				mu.Lock()
				switch status {
				case http.StatusOK:
					sum += by
					sequences = append(sequences, out.Sequence)
				case http.StatusConflict:
					conflicts++
				default:
					t.Errorf("status %d: %+v", status, out)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	t.Logf("%d successes, %d conflicts after every retry", len(sequences), conflicts)

	final := c.expect(200, "GET", "/counters/"+name, "")
	if final.Count != sum {
		t.Errorf("final count %d, but the 200 responses added up to %d", final.Count, sum)
	}
	if final.Sequence != int64(len(sequences)) {
		t.Errorf("final sequence %d, but %d requests succeeded", final.Sequence, len(sequences))
	}
	slices.Sort(sequences)
	for i, s := range sequences {
		if s != int64(i+1) {
			t.Fatalf("the successes saw sequences %v..., want 1, 2, 3, ...: two requests claim one event", sequences[:i+1])
		}
	}
}

// FuzzIncrementBody sends arbitrary bodies to the increment route: the
// server must never panic and must answer 200, 400, 413 or 422 with JSON.
func FuzzIncrementBody(f *testing.F) {
	for _, seed := range []string{"", "{}", "null", `{"by": 3}`, `{"by": 0}`, `{"by": 600}`, `{"by": 1001}`,
		`{"by": 1.5}`, "{", `{"by": 1} {}`, strings.Repeat(" ", maxBodyBytes+1)} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		// A fresh store per input keeps inputs independent and memory flat.
		counters, err := NewCounters(es.NewStore(memory.NewBackend()), 500, exampleRetryPolicy(), 100)
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/counters/c/increment", bytes.NewReader(body))
		newRouter(counters, slog.New(slog.DiscardHandler), 5*time.Second).ServeHTTP(rec, req)

		var out apiResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("status %d, body %q is not JSON: %v", rec.Code, rec.Body, err)
		}
		switch rec.Code {
		case http.StatusOK:
			if out.Name != "c" || out.Count < 1 || out.Count > 500 || out.Sequence != 1 {
				t.Fatalf("200 with %+v", out)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
			if out.Error == "" {
				t.Fatalf("%d without an error message", rec.Code)
			}
		default:
			t.Fatalf("status %d (%+v) for body %q", rec.Code, out, body)
		}
	})
}

// An increment repeated with its Idempotency-Key applies once, also after
// a reply the client never saw; the key is scoped to the counter.
func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	c := startServer(t, es.NewStore(memory.NewBackend()), 1000, exampleRetryPolicy())
	inc := func(name, key, body string) (int, apiResponse) {
		req, _ := http.NewRequestWithContext(t.Context(), "POST", c.base+"/counters/"+name+"/increment", strings.NewReader(body))
		if key != "" {
			req.Header.Set(idempotencyHeader, key)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out apiResponse
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, out
	}
	for i := 0; i < 3; i++ {
		if status, out := inc("a", "req-1", `{"by": 5}`); status != 200 || out.CounterView != (CounterView{"a", 5, 1}) {
			t.Fatalf("attempt %d: %d %+v, want 200 and count 5 at 1", i, status, out)
		}
	}
	if _, out := inc("a", "req-2", `{"by": 5}`); out.Count != 10 {
		t.Fatalf("another key: count %d, want 10", out.Count)
	}
	if _, out := inc("b", "req-1", `{"by": 1}`); out.CounterView != (CounterView{"b", 1, 1}) {
		t.Fatalf("the same key on another counter: %+v, want its own increment", out)
	}
	long := strings.Repeat("k", 200) // hashed into the command ID
	for i := 0; i < 2; i++ {
		if _, out := inc("c", long, ""); out.Count != 1 {
			t.Fatalf("long key, attempt %d: count %d, want 1", i, out.Count)
		}
	}
	for _, bad := range []string{"has space", "tab\tkey", strings.Repeat("k", 256), "ünï"} {
		if status, out := inc("a", bad, ""); status != 400 || !strings.Contains(out.Error, idempotencyHeader) {
			t.Fatalf("key %q: %d %+v, want 400 naming the header", bad, status, out)
		}
	}
	if out := c.expect(200, "GET", "/counters/a", ""); out.Count != 10 {
		t.Fatalf("count %d, want 10", out.Count)
	}
}

// frozenStore never answers: its calls return when their context ends, as
// a database client does when the server hangs. A commit that times out
// was sent, so its outcome is unknown.
type frozenStore struct{ es.EventStore }

func (frozenStore) Refresh(ctx context.Context, _ es.Loader) error {
	<-ctx.Done()
	return fmt.Errorf("load: %w", ctx.Err())
}

type frozenCommits struct{ es.EventStore }

func (frozenCommits) Commit(ctx context.Context, _ es.Commit) error {
	<-ctx.Done()
	return fmt.Errorf("append: %w: %w", es.ErrUnknownOutcome, ctx.Err())
}

// Requests to a store that hangs get a bounded answer, and /healthz says the
// store does not answer.
func TestFrozenStoreGetsBoundedAnswers(t *testing.T) {
	t.Parallel()
	serve := func(store es.EventStore) *client {
		srv := httptest.NewServer(newRouter(newTestCounters(t, store, 10, fastRetry), testLogger(t), 200*time.Millisecond))
		t.Cleanup(srv.Close)
		return &client{t: t, base: srv.URL, http: srv.Client()}
	}
	frozen := serve(frozenStore{es.NewStore(memory.NewBackend())})
	for _, req := range [][2]string{{"POST", "/counters/a/increment"}, {"GET", "/counters/a"}, {"GET", "/healthz"}} {
		start := time.Now()
		out := frozen.expect(503, req[0], req[1], "")
		if time.Since(start) > 30*time.Second {
			t.Fatalf("%s %s took %v", req[0], req[1], time.Since(start))
		}
		if !strings.Contains(out.Error, "did not answer") {
			t.Errorf("%s %s: %q", req[0], req[1], out.Error)
		}
	}
	hung := serve(frozenCommits{es.NewStore(memory.NewBackend())})
	if out := hung.expect(500, "POST", "/counters/a/increment", ""); !strings.Contains(out.Error, "Idempotency-Key") {
		t.Errorf("a commit that timed out: %q, want the advice to repeat with the same Idempotency-Key", out.Error)
	}
	hung.expect(200, "GET", "/healthz", "") // reads still work
}

func TestListParameters(t *testing.T) {
	t.Parallel()
	cfg := defaultConfig(t)
	cfg.Store = "memory"
	c := startServerWithList(t, cfg)
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "after=a.b", "after=%00"} {
		c.expect(400, "GET", "/counters?"+q, "")
	}
	var page listPage
	c.getJSON("/counters", &page)
	if page.Counters == nil || len(page.Counters) != 0 || page.Next != "" {
		t.Fatalf("empty list: %+v", page)
	}
	// Without a list (a store without a feed): 501 saying why.
	bare := startServer(t, es.NewStore(memory.NewBackend()), 10, fastRetry)
	if out := bare.expect(501, "GET", "/counters", ""); !strings.Contains(out.Error, "feed") {
		t.Fatalf("501 error = %q", out.Error)
	}
}

// A client that hangs up does not cancel the increment it started: the
// request's work is bounded by the timeout only, so the command is never cut
// off half-way with an unknown outcome.
func TestClientHangUpDoesNotCancelIncrement(t *testing.T) {
	store := es.NewStore(memory.NewBackend())
	h := newRouter(newTestCounters(t, store, 10, fastRetry), testLogger(t), 5*time.Second)
	gone, hangUp := context.WithCancel(context.Background())
	hangUp()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(gone, "POST", "/counters/c/increment", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d, body %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/counters/c", nil))
	var out apiResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Count != 1 || out.Sequence != 1 {
		t.Fatalf("after the hung-up increment: %d %s (%v)", rec.Code, rec.Body, err)
	}
}
