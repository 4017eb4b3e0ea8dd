package main

import (
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkIncrement drives the router in process (no network) over the
// store stack the server opens (memory, logging, snapshots every 100), with
// the logger at the server's default level writing to nowhere: what a
// request costs the server besides HTTP.
func BenchmarkIncrement(b *testing.B) {
	cfg, err := parseConfig([]string{"-store", "memory"}, func(string) (string, bool) { return "", false }, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: cfg.LogLevel}))
	st, err := openStore(b.Context(), cfg, log)
	if err != nil {
		b.Fatal(err)
	}
	defer st.close()
	counters, err := NewCounters(st.store, cfg.MaxCount, exampleRetryPolicy(), cfg.Cached)
	if err != nil {
		b.Fatal(err)
	}
	h := newRouter(counters, log, time.Second)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		req := httptest.NewRequest("POST", fmt.Sprintf("/counters/c%d/increment", i%100), nil)
		h.ServeHTTP(httptest.NewRecorder(), req)
		i++
	}
}
