package services

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podkit-dev/podkit/pkg/syncer/synccontext"
)

// Event reasons of the cluster IP adoption, recorded on the virtual Service.
const (
	// ReasonClusterIPAdopted (Normal) means the virtual Service was
	// recreated with its host Service's cluster IPs: the address clients
	// use in the virtual cluster is the one the host routes. The message
	// gives the old and new IPs and UIDs.
	ReasonClusterIPAdopted = "ClusterIPAdopted"
	// ReasonClusterIPNotAdopted (Warning) means the virtual API server
	// refused the host's cluster IPs (outside its service CIDR, taken by
	// another virtual Service, refused by admission, …): the virtual Service
	// keeps its own address, which the host does not route, and the syncer
	// tries again.
	ReasonClusterIPNotAdopted = "ClusterIPNotAdopted"
)

// adoptRetry is how soon a refused adoption is tried again: the address may
// be held by a virtual Service that is about to adopt its own.
const adoptRetry = 5 * time.Second

// recreateTimeout bounds the delete and create of a virtual Service, which
// run on even when the syncer stops.
const recreateTimeout = 30 * time.Second

// probePrefix names the dry-run Service that asks the virtual API server
// whether it would accept the host's cluster IPs.
const probePrefix = "podkit-clusterip-probe-"

// clusterIPs returns the cluster IPs of svc, the list if set.
func clusterIPs(svc *corev1.Service) []string {
	if len(svc.Spec.ClusterIPs) > 0 {
		return svc.Spec.ClusterIPs
	}
	if svc.Spec.ClusterIP != "" {
		return []string{svc.Spec.ClusterIP}
	}
	return nil
}

// needsClusterIP reports whether vSvc should be recreated with pSvc's
// cluster IPs: both allocate addresses (neither headless nor ExternalName)
// and they differ. The virtual API server's own "default/kubernetes"
// Service keeps the address it serves on.
func needsClusterIP(vSvc, pSvc *corev1.Service) bool {
	if vSvc.Namespace == metav1.NamespaceDefault && vSvc.Name == "kubernetes" {
		return false
	}
	if vSvc.DeletionTimestamp != nil || vSvc.Spec.Type == corev1.ServiceTypeExternalName || pSvc.Spec.Type == corev1.ServiceTypeExternalName {
		return false
	}
	if vSvc.Spec.ClusterIP == corev1.ClusterIPNone || pSvc.Spec.ClusterIP == corev1.ClusterIPNone {
		return false
	}
	host := clusterIPs(pSvc)
	return len(host) > 0 && !slices.Equal(clusterIPs(vSvc), host)
}

// withClusterIPs returns the virtual Service to create in place of vSvc:
// the same name, labels, annotations, owners and spec, with pSvc's cluster
// IPs and IP families. Status, UID and the rest of the server-set metadata
// are left to the virtual API server.
func withClusterIPs(vSvc, pSvc *corev1.Service) *corev1.Service {
	next := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       vSvc.Namespace,
			Name:            vSvc.Name,
			Labels:          maps.Clone(vSvc.Labels),
			Annotations:     maps.Clone(vSvc.Annotations),
			OwnerReferences: slices.Clone(vSvc.OwnerReferences),
		},
		Spec: *vSvc.Spec.DeepCopy(),
	}
	next.Spec.ClusterIPs = slices.Clone(clusterIPs(pSvc))
	next.Spec.ClusterIP = next.Spec.ClusterIPs[0]
	next.Spec.IPFamilies = slices.Clone(pSvc.Spec.IPFamilies)
	return next
}

// adoptClusterIP gives the virtual Service its host Service's cluster IPs.
// spec.clusterIP is immutable, so, as vcluster does, the virtual Service is
// deleted and created again with the host's addresses: it keeps its name,
// labels, annotations, owners and spec (node ports included) and gets a new
// UID and resourceVersion. Before deleting, a dry-run create asks the
// virtual API server whether it accepts the addresses; if not, the virtual
// Service is left as it is, with a ReasonClusterIPNotAdopted event, and
// adopted reports false. The delete carries UID and resourceVersion
// preconditions, so an edit made since the read is never lost.
func (s *Syncer) adoptClusterIP(ctx *synccontext.SyncContext, cached, pSvc *corev1.Service) (adopted bool, err error) {
	// The cache may lag behind a recreation this syncer just made: read
	// the virtual Service from the API server before acting on it.
	vSvc := &corev1.Service{}
	if err := s.virtualReader.Get(ctx.Context, client.ObjectKeyFromObject(cached), vSvc); err != nil {
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, fmt.Errorf("get virtual Service %s/%s: %w", cached.Namespace, cached.Name, err)
	}
	if !needsClusterIP(vSvc, pSvc) {
		return true, nil
	}
	hostIPs := strings.Join(clusterIPs(pSvc), ",")
	if len(vSvc.Finalizers) > 0 {
		s.Recorder.Eventf(vSvc, corev1.EventTypeWarning, ReasonClusterIPNotAdopted,
			"host cluster IP %s not adopted: the Service has finalizers %v, so it cannot be recreated", hostIPs, vSvc.Finalizers)
		return false, nil
	}
	next := withClusterIPs(vSvc, pSvc)
	probe := next.DeepCopy()
	probe.Name, probe.GenerateName = "", probePrefix
	for i := range probe.Spec.Ports {
		probe.Spec.Ports[i].NodePort = 0 // held by the Service itself until it is deleted
	}
	probe.Spec.HealthCheckNodePort = 0
	if err := ctx.VirtualClient.Create(ctx.Context, probe, client.DryRunAll); err != nil {
		if ctx.Context.Err() != nil {
			return false, fmt.Errorf("ask the virtual API server about cluster IP %s: %w", hostIPs, err)
		}
		ctx.Log.Info("virtual API server refuses the host's cluster IP", "clusterIPs", hostIPs, "error", err.Error())
		s.Recorder.Eventf(vSvc, corev1.EventTypeWarning, ReasonClusterIPNotAdopted,
			"host cluster IP %s not adopted, the Service keeps %s (not routed by the host): %v", hostIPs, strings.Join(clusterIPs(vSvc), ","), err)
		return false, nil
	}

	// Once the delete is sent, the Service must be created again even if
	// the syncer is stopping: delete and creates do not end with the
	// reconcile's context (a cancelled delete may still have happened).
	opCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx.Context), recreateTimeout)
	defer cancel()
	uid, rv := vSvc.UID, vSvc.ResourceVersion
	if err := ctx.VirtualClient.Delete(opCtx, vSvc, client.Preconditions{UID: &uid, ResourceVersion: &rv}); err != nil {
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return true, nil // changed since the read: its watch event brings it back
		}
		// The delete may have happened all the same: go on only if it did.
		if getErr := s.virtualReader.Get(opCtx, client.ObjectKeyFromObject(vSvc), &corev1.Service{}); !apierrors.IsNotFound(getErr) {
			return false, fmt.Errorf("delete virtual Service %s/%s to adopt cluster IP %s: %w", vSvc.Namespace, vSvc.Name, hostIPs, err)
		}
	}
	if err := ctx.VirtualClient.Create(opCtx, next); err != nil {
		// Put the Service back as it was (a new UID) rather than lose it.
		restore := withClusterIPs(vSvc, vSvc)
		if restoreErr := ctx.VirtualClient.Create(opCtx, restore); restoreErr != nil && !apierrors.IsAlreadyExists(restoreErr) {
			return false, fmt.Errorf("recreate virtual Service %s/%s with cluster IP %s: %w; and with its own: %w", vSvc.Namespace, vSvc.Name, hostIPs, err, restoreErr)
		}
		s.Recorder.Eventf(restore, corev1.EventTypeWarning, ReasonClusterIPNotAdopted,
			"host cluster IP %s not adopted, the Service was recreated with %s: %v", hostIPs, strings.Join(clusterIPs(vSvc), ","), err)
		return false, nil
	}
	ctx.Log.Info("recreated virtual Service with the host's cluster IP", "clusterIPs", hostIPs, "oldUID", uid, "newUID", next.UID)
	s.Recorder.Eventf(next, corev1.EventTypeNormal, ReasonClusterIPAdopted,
		"recreated with the host Service's cluster IP %s (was %s); UID %s replaces %s", hostIPs, strings.Join(clusterIPs(vSvc), ","), next.UID, uid)
	return true, nil
}
