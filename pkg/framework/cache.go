package framework

import (
	corev1 "k8s.io/api/core/v1"
	schedulingv1beta1 "k8s.io/api/scheduling/v1beta1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
)

// CacheByObject restricts a manager's pod and ConfigMap informers to the
// objects Framework controllers create (those labelled FC_FRAMEWORK_NAME),
// so the controller does not cache every pod of the cluster. Put it in
// cache.Options.ByObject of the manager that runs the Reconciler; without
// it the controller still works but caches more. It names only kinds every
// cluster serves; CacheByObjectFor adds the gang's PodGroups where the
// cluster serves them.
func CacheByObject() map[client.Object]cache.ByObject {
	sel := frameworkObjects()
	return map[client.Object]cache.ByObject{
		&corev1.Pod{}:       {Label: sel},
		&corev1.ConfigMap{}: {Label: sel},
	}
}

// CacheByObjectFor is CacheByObject, plus the Framework-labelled
// scheduling.k8s.io/v1beta1 PodGroups when cfg's cluster serves them
// (ServesGangAPI). A manager refuses to start with a ByObject kind the
// cluster does not serve, so a fixed list cannot name PodGroups.
func CacheByObjectFor(cfg *rest.Config) (map[client.Object]cache.ByObject, error) {
	byObject := CacheByObject()
	gang, err := ServesGangAPI(cfg)
	if err != nil {
		return nil, err
	}
	if gang {
		byObject[&schedulingv1beta1.PodGroup{}] = cache.ByObject{Label: frameworkObjects()}
	}
	return byObject, nil
}

// frameworkObjects selects the objects Framework controllers create.
func frameworkObjects() labels.Selector {
	req, err := labels.NewRequirement(v1.LabelFrameworkName, selection.Exists, nil)
	if err != nil {
		panic(err) // a constant, valid requirement
	}
	return labels.NewSelector().Add(*req)
}
