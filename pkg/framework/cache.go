package framework

import (
	corev1 "k8s.io/api/core/v1"
	schedulingv1beta1 "k8s.io/api/scheduling/v1beta1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
)

// CacheByObject restricts a manager's pod and ConfigMap informers to the
// objects Framework controllers create (those labelled FC_FRAMEWORK_NAME),
// so the controller does not cache every pod of the cluster. Put it in
// cache.Options.ByObject of the manager that runs the Reconciler; without
// it the controller still works but caches more.
func CacheByObject() map[client.Object]cache.ByObject {
	req, err := labels.NewRequirement(v1.LabelFrameworkName, selection.Exists, nil)
	if err != nil {
		panic(err) // a constant, valid requirement
	}
	sel := labels.NewSelector().Add(*req)
	return map[client.Object]cache.ByObject{
		&corev1.Pod{}:       {Label: sel},
		&corev1.ConfigMap{}: {Label: sel},
		// Only read where the cluster serves it (gang placement).
		&schedulingv1beta1.PodGroup{}: {Label: sel},
	}
}
