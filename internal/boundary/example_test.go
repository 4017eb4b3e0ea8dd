package boundary_test

import (
	"fmt"

	"github.com/aggregatekit/eventsourcing/internal/boundary"
)

func Example() {
	c := boundary.New(10000)
	c.Note("Order/42", 3) // this process wrote (or read) a commit ending at 3
	fmt.Println(c.Known("Order/42", 3), c.Known("Order/42", 2), c.Known("Order/7", 3))
	c.Note("Order/42", 5) // a later commit
	fmt.Println(c.Known("Order/42", 3), c.Known("Order/42", 5))
	// Output:
	// true false false
	// false true
}
