// Package testkit holds what the tests of every module of this repository
// share: where the real test servers are (`make test` starts them and sets
// the EVENTSOURCING_* variables, see tools/README.md), how to stop, freeze,
// kill and restart them for fault injection, and sizes for longer runs. It
// is the only place that reads the environment.
//
// Without the variables, a plain `go test ./...` skips the tests that need a
// server, with a message saying how to run them. With
// EVENTSOURCING_REQUIRE_SERVERS=1 (set by `make test`) a missing variable
// fails the test instead, so a broken setup never passes silently.
package testkit

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Variables naming the test servers.
const (
	MongoURI         = "EVENTSOURCING_MONGO_URI"
	DynamoDBEndpoint = "EVENTSOURCING_DYNAMODB_ENDPOINT"
	RedisAddr        = "EVENTSOURCING_REDIS_ADDR"
	NATSURL          = "EVENTSOURCING_NATS_URL"
	PostgresURL      = "EVENTSOURCING_POSTGRES_URL"
	RequireServers   = "EVENTSOURCING_REQUIRE_SERVERS"
)

// Get returns the value of the environment variable name. If it is unset,
// the test fails when servers are required and is skipped otherwise.
func Get(tb testing.TB, name string) string {
	tb.Helper()
	if v := os.Getenv(name); v != "" {
		return v
	}
	msg := name + " is not set: run `make test`, which starts the test servers, or start one yourself (see tools/README.md) and set " + name
	if os.Getenv(RequireServers) != "" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
	return ""
}

// StressCommands returns the number of commands per goroutine for stress
// tests: EVENTSOURCING_STRESS_COMMANDS if set (a longer run: 200 or more),
// else def.
func StressCommands(def int) int {
	if n, err := strconv.Atoi(os.Getenv("EVENTSOURCING_STRESS_COMMANDS")); err == nil && n > 0 {
		return n
	}
	return def
}

// RequireFaults skips tb unless EVENTSOURCING_FAULTS is set: fault tests stop
// the servers other tests use, so `make test` runs them in a step of their
// own (`make faults`), after everything else.
func RequireFaults(tb testing.TB) {
	tb.Helper()
	if os.Getenv("EVENTSOURCING_FAULTS") == "" {
		tb.Skip("fault injection stops shared test servers: `make test` runs it in its own step with EVENTSOURCING_FAULTS=1")
	}
}

// Server is one of the test servers, for fault injection: "mongo",
// "dynamodb", "redis", "nats" or "postgres".
type Server string

func (s Server) upper() string { return strings.ToUpper(string(s)) }

// pid returns the server's current process ID.
func (s Server) pid(tb testing.TB) int {
	tb.Helper()
	if p, ok := s.currentPID(); ok {
		return p
	}
	pid, err := strconv.Atoi(Get(tb, "EVENTSOURCING_"+s.upper()+"_PID"))
	if err != nil {
		tb.Fatalf("%s pid: %v", s, err)
	}
	return pid
}

// currentPID returns the PID of the server's latest restart in this
// process, or else the one its variable names, if any.
func (s Server) currentPID() (int, bool) {
	if p, ok := restarted.Load(s); ok {
		return p.(int), true
	}
	pid, err := strconv.Atoi(os.Getenv("EVENTSOURCING_" + s.upper() + "_PID"))
	return pid, err == nil
}

// Kill kills the server with SIGKILL and waits for the process to go.
func (s Server) Kill(tb testing.TB) {
	tb.Helper()
	pid := s.pid(tb)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		tb.Fatalf("kill %s (pid %d): %v", s, pid, err)
	}
	for i := 0; i < 250 && syscall.Kill(pid, 0) == nil; i++ {
		time.Sleep(20 * time.Millisecond)
	}
}

// Freeze stops the server with SIGSTOP: it keeps its connections but answers
// nothing, like a server that hangs. Thaw resumes it.
func (s Server) Freeze(tb testing.TB) {
	tb.Helper()
	if err := syscall.Kill(s.pid(tb), syscall.SIGSTOP); err != nil {
		tb.Fatalf("freeze %s: %v", s, err)
	}
}

// Thaw resumes a frozen server with SIGCONT.
func (s Server) Thaw(tb testing.TB) {
	tb.Helper()
	if err := syscall.Kill(s.pid(tb), syscall.SIGCONT); err != nil {
		tb.Fatalf("thaw %s: %v", s, err)
	}
}

// Restart starts a killed server again on its port and data directory and
// waits until it accepts connections.
func (s Server) Restart(tb testing.TB) {
	tb.Helper()
	out, err := exec.Command("bash", "-c", Get(tb, "EVENTSOURCING_"+s.upper()+"_RESTART")).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		tb.Fatalf("restart %s: %v\n%s", s, err, stderr)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		tb.Fatalf("restart %s: bad pid %q", s, out)
	}
	restarted.Store(s, pid)
	tb.Logf("%s restarted, pid %d", s, pid)
}
