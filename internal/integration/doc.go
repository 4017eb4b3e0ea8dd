// Package stress holds no library code. Its tests race many writers on the
// database stores (alone and under the full middleware stack) and check that
// no event is lost, duplicated or half-written. Servers come from
// `make test`; EVENTSOURCING_STRESS_COMMANDS=200 makes a longer run.
package stress
