// Package storetest is the conformance suite of eventsourcing.EventStore:
// a store adapted by eventsourcing.NewStore, or any stack of middleware over
// one. It drives real aggregates, so it checks what an application sees:
// loads, commits, conflicts retried from fresh state, commit IDs and
// repeated commands, whole batches under racing writers. Run it under -race:
//
//	func TestStack(t *testing.T) {
//		storetest.RunEventStore(t, func(t *testing.T) eventsourcing.EventStore {
//			return eventsourcing.Wrap(eventsourcing.NewStore(open(t)), snapshots, logs)
//		})
//	}
//
// Stores check their byte-level contract with package backend/backendtest
// first; this suite is what each middleware stack passes on top.
package storetest

import (
	"testing"
	"time"
)

func deadline(t *testing.T) time.Duration {
	if d, ok := t.Deadline(); ok {
		return time.Until(d)
	}
	return 10 * time.Minute
}
