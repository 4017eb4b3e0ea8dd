// Package stack holds no code: its tests check the recommended middleware
// stack, logging(snapshot(publish(store))), as a whole. See the tests for a
// composition to copy:
//
//	store := eventsourcing.Wrap(backendStore, loggingMW, snapshotMW, publishMW)
//
// Calls reach logging first, then snapshot, then publish, then the store.
// Logging times everything below it; the snapshot middleware restores before
// the store loads and snapshots after publish has seen a successful commit;
// publish sends only what the store committed.
package stack
