// Package cputime reads the CPU time the process has used, for benchmarks
// that report CPU time per operation beside wall time (on a shared machine
// wall time measures the neighbours as much as the code).
package cputime

import "time"

// Process returns the user plus system CPU time the process has used so
// far, or 0 where the platform does not say (then CPU figures read 0).
func Process() time.Duration { return process() }
