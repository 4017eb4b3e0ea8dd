package cputime

import (
	"runtime"
	"testing"
)

func TestProcessAdvances(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skip("no CPU time on", runtime.GOOS)
	}
	start := Process()
	x := 0
	for Process()-start <= 0 { // spins until the clock ticks: the test fails only by hanging
		for i := range 1_000_000 {
			x += i
		}
	}
	_ = x
}
