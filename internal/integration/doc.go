// Package integration holds no library code: its tests check the toolkit's
// pieces together, against the real servers `make test` starts.
//
//   - stack: the recommended middleware stack, logging(snapshot(publish(store))),
//     in order and under the conformance suite, as a composition to copy:
//
//     store := eventsourcing.Wrap(eventsourcing.NewStore(backend), loggingMW, snapshotMW, publishMW)
//
//   - stress: many writers racing on one aggregate and others, on every database
//     store, alone and under the full stack: nothing acknowledged is lost,
//     duplicated or half-written (EVENTSOURCING_STRESS_COMMANDS=200 for a
//     longer run);
//
//   - faults (tests named TestFault*, run alone by `make faults`): a database
//     server is killed in the middle of a run of racing commands and
//     restarted; every acknowledged command is stored, none that conflicted is,
//     and commands repeated with their command ID after an unknown outcome
//     apply exactly once.
package integration
