package barrier

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/podkit-dev/podkit/api/v1alpha1"
)

// Release is a Framework as WaitRelease saw it when every task had a pod
// IP: the addresses, and the Framework, decoded only if asked. Reading a
// large Framework's status whole costs a waiter several times what reading
// the addresses costs, and a barrier that releases a thousand waiters at
// once pays that a thousand times.
type Release struct {
	// Peers are the pod IPs of every task, by role in spec order (as
	// PeersOf).
	Peers []RolePeers

	framework *v1alpha1.Framework // decoded; nil when only raw is known
	raw       []byte              // the Framework's JSON as the apiserver sent it
	expanded  []byte              // raw's task statuses expanded, when compressed
	decoder   runtime.Decoder     // decodes raw
}

// Framework returns the released Framework, decoding it on the first call.
func (r *Release) Framework() (*v1alpha1.Framework, error) {
	if r.framework != nil {
		return r.framework, nil
	}
	var f v1alpha1.Framework
	if _, _, err := r.decoder.Decode(r.raw, nil, &f); err != nil {
		return nil, fmt.Errorf("decode released framework: %w", err)
	}
	r.framework = &f
	return r.framework, nil
}
