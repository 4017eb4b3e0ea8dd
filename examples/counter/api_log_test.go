package main

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	es "github.com/aggregatekit/eventsourcing"
	"github.com/aggregatekit/eventsourcing/stores/memory"
)

// The access log reports failed requests at Info and successful ones only
// at Debug.
func TestAccessLogLevels(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		var buf bytes.Buffer
		log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: level}))
		counters, err := NewCounters(es.NewStore(memory.NewBackend()), 10, fastRetry, 10)
		if err != nil {
			t.Fatal(err)
		}
		h := newRouter(counters, log, time.Second)
		for _, path := range []string{"/counters/ok/increment", "/counters/bad%20name!/increment"} {
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, path, nil))
		}
		lines := strings.Count(buf.String(), "msg=request")
		failed := strings.Contains(buf.String(), "level=INFO msg=request method=POST")
		ok := strings.Contains(buf.String(), "level=DEBUG msg=request method=POST path=/counters/ok/increment status=200")
		switch {
		case level == slog.LevelInfo && (lines != 1 || !failed):
			t.Fatalf("at Info: %d request lines, want only the failed one:\n%s", lines, buf.String())
		case level == slog.LevelDebug && (lines != 2 || !failed || !ok):
			t.Fatalf("at Debug: %d request lines, want both:\n%s", lines, buf.String())
		}
	}
}
