package main

import (
	"fmt"
	"strings"
)

const metaV1 = "k8s.io/apimachinery/pkg/apis/meta/v1"

// kubeRefGroups maps a k8s.io/api directory to the group suffix of its
// anchors in the Kubernetes API reference (#deployment-v1-apps).
var kubeRefGroups = map[string]string{
	"core":          "core",
	"apps":          "apps",
	"batch":         "batch",
	"autoscaling":   "autoscaling",
	"policy":        "policy",
	"networking":    "networking-k8s-io",
	"rbac":          "rbac-authorization-k8s-io",
	"storage":       "storage-k8s-io",
	"scheduling":    "scheduling-k8s-io",
	"coordination":  "coordination-k8s-io",
	"discovery":     "discovery-k8s-io",
	"node":          "node-k8s-io",
	"resource":      "resource-k8s-io",
	"certificates":  "certificates-k8s-io",
	"events":        "events-k8s-io",
	"flowcontrol":   "flowcontrol-apiserver-k8s-io",
	"apiextensions": "apiextensions-k8s-io",
}

// kubeRefMeta are the meta/v1 types the Kubernetes API reference has a
// section for; the others (Time, Duration…) link to their Go docs.
var kubeRefMeta = map[string]bool{
	"ObjectMeta": true, "ListMeta": true, "LabelSelector": true,
	"OwnerReference": true, "ManagedFieldsEntry": true, "Condition": true, "Status": true,
}

// upstreamURL is the documentation of another package's type: its section
// in the Kubernetes API reference for API types, else its Go docs.
func upstreamURL(importPath, name, kubeVersion string) string {
	if importPath == "" {
		return ""
	}
	ref := "https://kubernetes.io/docs/reference/generated/kubernetes-api/" + kubeVersion + "/#" + strings.ToLower(name)
	if importPath == metaV1 && kubeRefMeta[name] {
		return ref + "-v1-meta"
	}
	if rest, ok := strings.CutPrefix(importPath, "k8s.io/api/"); ok {
		dir, version, _ := strings.Cut(rest, "/")
		if g, ok := kubeRefGroups[dir]; ok && version != "" && !strings.Contains(version, "/") {
			return ref + "-" + version + "-" + g
		}
	}
	return "https://pkg.go.dev/" + importPath + "#" + name
}

// kubeMinor turns a Kubernetes version or a k8s.io module version into the
// reference's "v1.N": v1.37, v1.37.2 and v0.37.2 all give v1.37.
func kubeMinor(v string) (string, error) {
	parts := strings.Split(strings.TrimPrefix(v, "v"), ".")
	if len(parts) < 2 || (parts[0] != "0" && parts[0] != "1") || parts[1] == "" || strings.Trim(parts[1], "0123456789") != "" {
		return "", fmt.Errorf("kubernetes version %q: want v1.N, v1.N.P or a k8s.io module version v0.N.P", v)
	}
	return "v1." + parts[1], nil
}
