// Package faults holds no library code. Its tests kill a real database server
// in the middle of a run of racing commands, restart it, and check that every
// command either succeeded or returned an error within its deadline, and
// that the stored events are exactly those of the acknowledged commands plus,
// at most, those of commands whose outcome the outage made unknown.
//
// They stop servers that other tests use, so `make test` runs them in a step
// of their own, after every other package, with EVENTSOURCING_FAULTS=1.
package faults
