package testkit

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// CPU returns a function reading the CPU time (user + system) that the
// server's process and its direct children (PostgreSQL's backends, say) have
// used so far, from /proc, or nil when that is unknown: no PID variable, or
// no /proc. The kernel counts in clock ticks of 10 ms, so only sums over
// many operations mean anything. Benchmarks use it to report server CPU per
// operation beside their own.
func (s Server) CPU() func() time.Duration {
	pid, ok := s.currentPID()
	if !ok {
		return nil
	}
	p := strconv.Itoa(pid)
	if _, err := os.Stat("/proc/" + p + "/stat"); err != nil {
		return nil
	}
	return func() time.Duration {
		total := procTicks(p)
		kids, _ := os.ReadFile("/proc/" + p + "/task/" + p + "/children")
		for _, k := range strings.Fields(string(kids)) {
			total += procTicks(k)
		}
		return time.Duration(total) * 10 * time.Millisecond // USER_HZ = 100
	}
}

// procTicks returns the utime + stime of process pid in clock ticks, or 0
// if it cannot be read.
func procTicks(pid string) int64 {
	raw, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	s := string(raw)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces
	if i < 0 || i+2 > len(s) {
		return 0
	}
	f := strings.Fields(s[i+2:]) // from field 3, state
	if len(f) < 13 {
		return 0
	}
	user, _ := strconv.ParseInt(f[11], 10, 64) // field 14, utime
	sys, _ := strconv.ParseInt(f[12], 10, 64)  // field 15, stime
	return user + sys
}
