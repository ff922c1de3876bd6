package synccontext_test

import (
	"fmt"

	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
)

// A policy from the names `podkit sync run --allow` takes: everything not
// named stays withheld.
func ExampleParsePolicy() {
	policy, err := synccontext.ParsePolicy([]string{"host-path", "service-exposure"})
	if err != nil {
		panic(err)
	}
	fmt.Println(policy.Allows(synccontext.AllowHostPath), policy.Allows(synccontext.AllowPrivileged))
	_, err = synccontext.ParsePolicy([]string{"root"})
	fmt.Println(err != nil)
	// Output:
	// true false
	// true
}
