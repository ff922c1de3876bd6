package vdns

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
)

// ClusterSource is a Source that watches a cluster's Services and
// EndpointSlices (all namespaces) through informers, as CoreDNS's kubernetes
// plugin does.
type ClusterSource struct {
	factory  informers.SharedInformerFactory
	services corelisters.ServiceLister
	slices   discoverylisters.EndpointSliceLister
	synced   []cache.InformerSynced
}

var _ Source = (*ClusterSource)(nil)

// NewClusterSource returns a source reading cs; it reads nothing until Start.
func NewClusterSource(cs kubernetes.Interface) *ClusterSource {
	f := informers.NewSharedInformerFactory(cs, 0)
	svc := f.Core().V1().Services()
	eps := f.Discovery().V1().EndpointSlices()
	return &ClusterSource{
		factory: f, services: svc.Lister(), slices: eps.Lister(),
		synced: []cache.InformerSynced{svc.Informer().HasSynced, eps.Informer().HasSynced},
	}
}

// Start starts the informers; they stop when stop is closed. Call Shutdown
// after closing stop to wait for them.
func (c *ClusterSource) Start(stop <-chan struct{}) { c.factory.Start(stop) }

// Shutdown waits for the informers started by Start to end; close Start's
// stop channel first.
func (c *ClusterSource) Shutdown() { c.factory.Shutdown() }

// HasSynced implements Source.
func (c *ClusterSource) HasSynced() bool {
	for _, s := range c.synced {
		if !s() {
			return false
		}
	}
	return true
}

// Service implements Source.
func (c *ClusterSource) Service(namespace, name string) (*corev1.Service, error) {
	svc, err := c.services.Services(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get Service %s/%s from cache: %w", namespace, name, err)
	}
	return svc, nil
}

// HasServices implements Source.
func (c *ClusterSource) HasServices(namespace string) (bool, error) {
	list, err := c.services.Services(namespace).List(labels.Everything())
	if err != nil {
		return false, fmt.Errorf("list Services of %s from cache: %w", namespace, err)
	}
	return len(list) > 0, nil
}

// EndpointSlices implements Source.
func (c *ClusterSource) EndpointSlices(namespace, service string) ([]*discoveryv1.EndpointSlice, error) {
	sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: service})
	list, err := c.slices.EndpointSlices(namespace).List(sel)
	if err != nil {
		return nil, fmt.Errorf("list EndpointSlices of %s/%s from cache: %w", namespace, service, err)
	}
	return list, nil
}
