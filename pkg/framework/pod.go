package framework

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
)

// newConfigMap builds the ConfigMap of a framework attempt. It carries no
// payload beyond identification: its UID makes the attempt's instance UID.
func newConfigMap(fw *v1.Framework, attemptID int32) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:            v1.ConfigMapName(fw.Name),
			Namespace:       fw.Namespace,
			Labels:          map[string]string{v1.LabelFrameworkName: fw.Name},
			Annotations:     map[string]string{v1.AnnotationFrameworkAttemptID: strconv.Itoa(int(attemptID))},
			OwnerReferences: []metav1.OwnerReference{ownerRef(fw, v1.FrameworkGroupVersionKind)},
		},
		Data: map[string]string{
			"framework": fw.Name,
			"attemptID": strconv.Itoa(int(attemptID)),
		},
	}
}

func ownerRef(fw *v1.Framework, gvk schema.GroupVersionKind) metav1.OwnerReference {
	return *metav1.NewControllerRef(fw, gvk)
}

// attemptInstanceUID is FrameworkController's "{attemptID}_{uid}".
func attemptInstanceUID(id int32, uid types.UID) *types.UID {
	s := types.UID(fmt.Sprintf("%d_%s", id, uid))
	return &s
}

// NewPod returns the pod the controller creates for attempt taskAttemptID
// of task index of role: the role's template with the deterministic name,
// the owner reference, FrameworkController's labels, annotations and env
// vars (plus their PODKIT_* twins), and restartPolicy Never when the
// template leaves it empty. fw.Status must hold the current attempt.
func NewPod(fw *v1.Framework, role *v1.TaskRoleSpec, index, taskAttemptID int32) *corev1.Pod {
	st := fw.Status
	att := &st.AttemptStatus
	name := v1.PodName(fw.Name, role.Name, index)
	indexStr := strconv.Itoa(int(index))
	tmpl := replacePlaceholders(&role.Task.Pod, strings.NewReplacer(
		"{{FC_FRAMEWORK_NAMESPACE}}", fw.Namespace,
		"{{FC_FRAMEWORK_NAME}}", fw.Name,
		"{{FC_TASKROLE_NAME}}", role.Name,
		"{{FC_TASK_INDEX}}", indexStr,
		"{{FC_CONFIGMAP_NAME}}", v1.ConfigMapName(fw.Name),
		"{{FC_POD_NAME}}", name,
	))
	fwAttemptID := strconv.Itoa(int(att.ID))
	cmUID := ""
	if att.ConfigMapUID != nil {
		cmUID = string(*att.ConfigMapUID)
	}
	fwInstance := ""
	if att.InstanceUID != nil {
		fwInstance = string(*att.InstanceUID)
	}
	taskAttempt := strconv.Itoa(int(taskAttemptID))

	pod := &corev1.Pod{
		ObjectMeta: tmpl.ObjectMeta,
		Spec:       tmpl.Spec,
	}
	pod.Name = name
	pod.GenerateName = ""
	pod.Namespace = fw.Namespace
	pod.OwnerReferences = []metav1.OwnerReference{ownerRef(fw, v1.FrameworkGroupVersionKind)}
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[v1.LabelFrameworkName] = fw.Name
	pod.Labels[v1.LabelTaskRoleName] = role.Name
	pod.Labels[v1.LabelTaskIndex] = indexStr
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	for k, v := range map[string]string{
		v1.AnnotationFrameworkNamespace:          fw.Namespace,
		v1.AnnotationFrameworkName:               fw.Name,
		v1.AnnotationTaskRoleName:                role.Name,
		v1.AnnotationTaskIndex:                   indexStr,
		v1.AnnotationConfigMapName:               att.ConfigMapName,
		v1.AnnotationPodName:                     name,
		v1.AnnotationFrameworkAttemptID:          fwAttemptID,
		v1.AnnotationFrameworkAttemptInstanceUID: fwInstance,
		v1.AnnotationConfigMapUID:                cmUID,
		v1.AnnotationTaskAttemptID:               taskAttempt,
	} {
		pod.Annotations[k] = v
	}
	if pod.Spec.RestartPolicy == "" {
		pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	}
	if sel := fw.RoleNodeSelector(role.Name); len(sel) > 0 {
		if pod.Spec.NodeSelector == nil {
			pod.Spec.NodeSelector = map[string]string{}
		}
		for k, v := range sel {
			pod.Spec.NodeSelector[k] = v
		}
	}

	plain := []corev1.EnvVar{
		{Name: v1.EnvFrameworkNamespace, Value: fw.Namespace},
		{Name: v1.EnvFrameworkName, Value: fw.Name},
		{Name: v1.EnvFrameworkUID, Value: string(fw.UID)},
		{Name: v1.EnvTaskRoleName, Value: role.Name},
		{Name: v1.EnvTaskIndex, Value: indexStr},
		{Name: v1.EnvConfigMapName, Value: att.ConfigMapName},
		{Name: v1.EnvPodName, Value: name},
		{Name: v1.EnvFrameworkAttemptID, Value: fwAttemptID},
		{Name: v1.EnvFrameworkAttemptInstanceUID, Value: fwInstance},
		{Name: v1.EnvConfigMapUID, Value: cmUID},
		{Name: v1.EnvTaskAttemptID, Value: taskAttempt},
		{Name: v1.EnvPodUID, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.uid"}}},
		// Defined after FC_POD_UID so that $(FC_POD_UID) expands.
		{Name: v1.EnvTaskAttemptInstanceUID, Value: taskAttempt + "_$(" + v1.EnvPodUID + ")"},
	}
	env := make([]corev1.EnvVar, 0, 2*len(plain))
	env = append(env, plain...)
	for _, e := range plain {
		twin := e
		twin.Name = v1.PodkitEnvName(e.Name)
		if e.Name == v1.EnvTaskAttemptInstanceUID {
			twin.Value = taskAttempt + "_$(" + v1.PodkitEnvName(v1.EnvPodUID) + ")"
		}
		env = append(env, twin)
	}
	inject := func(cs []corev1.Container) {
		for i := range cs {
			cs[i].Env = append(append([]corev1.EnvVar(nil), env...), cs[i].Env...)
		}
	}
	inject(pod.Spec.InitContainers)
	inject(pod.Spec.Containers)
	// As FC does: a container that fails without writing its termination
	// message still tells why, from the tail of its log.
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range cs {
			if cs[i].TerminationMessagePolicy == "" {
				cs[i].TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
			}
		}
	}
	return pod
}

// replacePlaceholders returns a copy of tmpl with FrameworkController's
// {{FC_*}} placeholders replaced in every string: FC serialises the template,
// replaces the text and parses it back, and so does this. The values are
// names (DNS labels, digits), which never need JSON escaping.
func replacePlaceholders(tmpl *corev1.PodTemplateSpec, r *strings.Replacer) *corev1.PodTemplateSpec {
	data, err := json.Marshal(tmpl)
	if err != nil || !bytes.Contains(data, []byte("{{FC_")) {
		return tmpl.DeepCopy()
	}
	out := &corev1.PodTemplateSpec{}
	if err := json.Unmarshal([]byte(r.Replace(string(data))), out); err != nil {
		// Unreachable: the replacement values need no escaping.
		return tmpl.DeepCopy()
	}
	return out
}

// owned reports whether pod belongs to fw: podkit makes the Framework the
// pod's controller, FrameworkController the attempt's ConfigMap cm (which
// fw controls; cm may be nil).
func owned(pod *corev1.Pod, fw *v1.Framework, cm *corev1.ConfigMap) bool {
	return metav1.IsControlledBy(pod, fw) || (cm != nil && metav1.IsControlledBy(pod, cm))
}

// podBelongsTo reports whether pod is the pod of the given framework attempt
// instance and task attempt (so it can be adopted after a lost status write).
func podBelongsTo(pod *corev1.Pod, fw *v1.Framework, cm *corev1.ConfigMap, taskAttemptID int32) bool {
	if !owned(pod, fw, cm) {
		return false
	}
	att := fw.Status.AttemptStatus
	if att.InstanceUID == nil || pod.Annotations[v1.AnnotationFrameworkAttemptInstanceUID] != string(*att.InstanceUID) {
		return false
	}
	return pod.Annotations[v1.AnnotationTaskAttemptID] == strconv.Itoa(int(taskAttemptID))
}

// maxMessageBytes bounds each message and diagnostics string copied from a
// pod into the status, so that thousands of tasks still fit one object.
const maxMessageBytes = 1024

func truncate(s string) string {
	if len(s) <= maxMessageBytes {
		return s
	}
	cut := maxMessageBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…(truncated)"
}

// podCompletionStatus is what a pod says about its end: its reason and
// message and every container's termination, as FrameworkController records
// it; messages are truncated to maxMessageBytes.
func podCompletionStatus(pod *corev1.Pod) *v1.PodCompletionStatus {
	pcs := &v1.PodCompletionStatus{Reason: pod.Status.Reason, Message: truncate(pod.Status.Message)}
	for _, c := range allContainerStatuses(pod) {
		ccs := v1.ContainerCompletionStatus{Name: c.Name}
		if term := c.State.Terminated; term != nil {
			ccs.Reason, ccs.Message, ccs.Signal, ccs.Code = term.Reason, truncate(term.Message), term.Signal, term.ExitCode
		}
		pcs.Containers = append(pcs.Containers, ccs)
	}
	return pcs
}

// podCompletion returns the completion status of a terminated pod, or nil
// while it runs: Succeeded for a succeeded pod, otherwise the pod failure
// classification (see classifier.classify).
func (r *Reconciler) podCompletion(pod *corev1.Pod) *v1.CompletionStatus {
	var cs *v1.CompletionStatus
	switch pod.Status.Phase {
	case corev1.PodSucceeded:
		cs = v1.NewCompletionStatus(v1.CompletionCodeSucceeded, "pod succeeded")
	case corev1.PodFailed:
		cs = r.classifier.classify(pod)
	default:
		return nil
	}
	cs.Diagnostics = truncate(cs.Diagnostics)
	cs.Pod = podCompletionStatus(pod)
	return cs
}

// podReady reports whether a pod counts as ready for the Ready column: it
// runs and has an IP.
func podReady(ts *v1.TaskStatus) bool {
	return ts.State == v1.TaskAttemptRunning && ts.AttemptStatus.PodIP != nil
}
