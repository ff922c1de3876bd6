{{/* Names and labels shared by every object of the chart. */}}

{{- define "podkit.serviceAccountName" -}}
{{- default "podkit-framework-controller" .Values.serviceAccount.name -}}
{{- end -}}

{{- define "podkit.labels" -}}
app.kubernetes.io/name: podkit
app.kubernetes.io/part-of: podkit
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "podkit.selectorLabels" -}}
app.kubernetes.io/component: framework-controller
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
The controller's rules on what it manages: config/rbac/framework_role.yaml
(generated from the +kubebuilder:rbac markers in pkg/framework) without its
Lease rule, which leader-election Role grants in the release namespace only.
test/helm fails when the two differ.
*/}}
{{- define "podkit.controllerRules" -}}
- apiGroups: [""]
  resources: [configmaps, pods]
  verbs: [create, delete, get, list, watch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch, update]
- apiGroups: [podkit.dev]
  resources: [frameworks]
  verbs: [get, list, patch, watch]
- apiGroups: [podkit.dev]
  resources: [frameworks/finalizers]
  verbs: [update]
- apiGroups: [podkit.dev]
  resources: [frameworks/status]
  verbs: [get, patch, update]
- apiGroups: [scheduling.k8s.io]
  resources: [podgroups]
  verbs: [create, delete, get, list, patch, watch]
- apiGroups: [kueue.x-k8s.io]
  resources: [resourceflavors, workloadpriorityclasses]
  verbs: [get, list, watch]
- apiGroups: [kueue.x-k8s.io]
  resources: [workloads]
  verbs: [create, delete, get, list, patch, update, watch]
- apiGroups: [kueue.x-k8s.io]
  resources: [workloads/status]
  verbs: [get, patch, update]
{{- end -}}
