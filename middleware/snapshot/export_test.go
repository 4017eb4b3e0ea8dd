package snapshot

// Seal wraps state in the envelope the middleware writes, for tests that
// plant snapshots in a store.
var Seal = seal
