package testkit

import "sync"

// restarted maps a Server to the PID of its latest restart in this test
// process: the EVENTSOURCING_*_PID variables name the first one.
var restarted sync.Map
