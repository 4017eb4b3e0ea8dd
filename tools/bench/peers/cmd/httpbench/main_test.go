package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// TestStartServerReportsEarlyExit checks that a server that exits before
// listening is reported with the tail of its log.
func TestStartServerReportsEarlyExit(t *testing.T) {
	_, err := startServer(context.Background(), t.TempDir(), "false", "/bin/sh",
		[]string{"-c", "echo boom >&2; exit 3"}, func(string) []string { return nil })
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("err = %v, want the exit reported with the log", err)
	}
}

// TestAttackCeiling runs a short attack on the ceiling handler in this
// process, which exercises the vegeta integration, the counting and the
// CPU reading.
func TestAttackCeiling(t *testing.T) {
	ts := httptest.NewServer(ceilingHandler())
	defer ts.Close()
	srv := &server{name: "ceiling", base: ts.URL, pid: os.Getpid()}
	m, err := attack(srv, scenario{name: "3 counters", counters: 3}, 4, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if m.rate <= 0 || m.success != 1 || m.p50 <= 0 || m.p99 < m.p50 {
		t.Fatalf("implausible measurement %+v", m)
	}
	resp, err := http.Post(ts.URL+"/counters/c001/increment", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		Name  string
		Count int64
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	if v.Name != "c001" || v.Count < 2 {
		t.Fatalf("counter after the attack: %+v, want c001 incremented by the attack too", v)
	}
}

func TestParseFlags(t *testing.T) {
	var out strings.Builder
	if _, err := parseFlags([]string{"-clients", "0"}, &out); err == nil {
		t.Error("no error for 0 clients")
	}
	c, err := parseFlags([]string{"-example-args", "-log-level warn"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.exampleArgs, "|") != "-log-level|warn" || c.clients != 16 || c.counters != 100 {
		t.Errorf("config %+v", c)
	}
}
