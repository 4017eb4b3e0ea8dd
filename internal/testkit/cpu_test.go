package testkit

import (
	"os"
	"strconv"
	"testing"
)

// CPU reads a process's CPU time from /proc: here, this test's own process
// standing in for a server.
func TestServerCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc here")
	}
	t.Setenv("EVENTSOURCING_CPUTEST_PID", strconv.Itoa(os.Getpid()))
	read := Server("cputest").CPU()
	if read == nil {
		t.Fatal("no reader for a known PID")
	}
	start := read()
	x := 0
	for read() <= start { // spins until the clock ticks: the test fails only by hanging
		for i := range 1_000_000 {
			x += i
		}
	}
	_ = x
	t.Setenv("EVENTSOURCING_CPUTEST_PID", "")
	if Server("cputest").CPU() != nil {
		t.Fatal("a reader without a PID")
	}
}
