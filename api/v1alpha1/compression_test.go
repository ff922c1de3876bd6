package v1alpha1_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/podkit-dev/podkit/api/v1alpha1"
)

// completedTasks is the status of n completed tasks as the controller
// writes it: every field set, a failed container with a message.
func completedTasks(role string, n int) v1.TaskRoleStatus {
	now := metav1.NewTime(time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC))
	rs := v1.TaskRoleStatus{Name: role}
	for i := range n {
		uid := types.UID(fmt.Sprintf("0_3f6c1e52-9d7a-4c1b-8e3f-%012d", i))
		podUID := types.UID(fmt.Sprintf("3f6c1e52-9d7a-4c1b-8e3f-%012d", i))
		node, ip, host := fmt.Sprintf("node-%06d", i%500), fmt.Sprintf("10.%d.%d.%d", i/65536, i/256%256, i%256), "192.0.2.1"
		cs := v1.NewCompletionStatus(137, `PodPattern unmatched: {"containers":[{"name":"main","reason":"Error","code":137}]}`)
		cs.Pod = &v1.PodCompletionStatus{Containers: []v1.ContainerCompletionStatus{{Name: "main", Reason: "Error", Code: 137, Message: "killed"}}}
		rs.TaskStatuses = append(rs.TaskStatuses, v1.TaskStatus{
			Index: int32(i), InstanceUID: &uid, StartTime: now, CompletionTime: &now, State: v1.TaskCompleted, TransitionTime: now,
			RetryPolicyStatus: v1.RetryPolicyStatus{TotalRetriedCount: 3, AccountableRetriedCount: 3},
			AttemptStatus: v1.TaskAttemptStatus{ID: 3, StartTime: now, RunTime: &now, CompletionTime: &now, InstanceUID: &uid,
				PodName: fmt.Sprintf("a-framework-name-%s-%d", role, i), PodUID: &podUID, PodNodeName: &node, PodIP: &ip, PodHostIP: &host,
				CompletionStatus: cs},
		})
	}
	return rs
}

func TestLargeTaskStatusesAreCompressedOnTheWire(t *testing.T) {
	small := v1.FrameworkAttemptStatus{ConfigMapName: "x", TaskRoleStatuses: []v1.TaskRoleStatus{completedTasks("w", 2)}}
	data, err := json.Marshal(small)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("taskRoleStatusesCompressed")) {
		t.Errorf("a small status was compressed: %s", data)
	}
	big := v1.FrameworkAttemptStatus{ConfigMapName: "x", TaskRoleStatuses: []v1.TaskRoleStatus{completedTasks("w", 5000)}}
	raw, _ := json.Marshal(big.TaskRoleStatuses)
	data, err = json.Marshal(big)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(`"taskRoleStatuses"`)) || len(data) > len(raw)/5 {
		t.Errorf("5000 tasks: %d bytes on the wire for %d bytes of statuses; want them compressed at least 5x", len(data), len(raw))
	}
	t.Logf("5000 completed tasks: %d bytes of JSON, %d compressed (%.1fx)", len(raw), len(data), float64(len(raw))/float64(len(data)))
	var back v1.FrameworkAttemptStatus
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.TaskRoleStatusesCompressed) != 0 || len(back.TaskRoleStatuses) != 1 || len(back.TaskRoleStatuses[0].TaskStatuses) != 5000 ||
		*back.TaskRoleStatuses[0].TaskStatuses[4999].AttemptStatus.PodIP != *big.TaskRoleStatuses[0].TaskStatuses[4999].AttemptStatus.PodIP {
		t.Error("decoded statuses differ from the encoded ones")
	}
}

func TestCompressedStatusBombIsRefused(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zeros := make([]byte, 1<<20)
	for range (v1.MaxDecompressedBytes >> 20) + 1 {
		_, _ = zw.Write(zeros)
	}
	_ = zw.Close()
	data, _ := json.Marshal(map[string]any{"configMapName": "x", "taskRoleStatusesCompressed": buf.Bytes()})
	var st v1.FrameworkAttemptStatus
	err := json.Unmarshal(data, &st)
	if err == nil || !strings.Contains(err.Error(), "expands beyond") {
		t.Fatalf("a %d-byte gzip of %d MiB: err = %v, want a refusal", buf.Len(), (v1.MaxDecompressedBytes>>20)+1, err)
	}
}

// TestFiveThousandCompletedTasksFitEtcd writes the status of a Framework at
// the task cap, every task completed, through the real apiserver and etcd
// (whose request limit is 1.5 MiB), and reads it back whole.
func TestFiveThousandCompletedTasksFitEtcd(t *testing.T) {
	ns := env.Namespace(t)
	ctx := context.Background()
	fw := validFramework(ns, "fivethousand")
	fw.Spec.TaskRoles = []v1.TaskRoleSpec{role("a", 2500), role("b", 2500)}
	if err := env.Client.Create(ctx, fw); err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	fw.Status = &v1.FrameworkStatus{StartTime: now, State: v1.FrameworkCompleted, TransitionTime: now,
		AttemptStatus: v1.FrameworkAttemptStatus{StartTime: now, ConfigMapName: "fivethousand-attempt",
			TaskRoleStatuses: []v1.TaskRoleStatus{completedTasks("a", 2500), completedTasks("b", 2500)}}}
	raw, _ := json.Marshal(fw.Status.AttemptStatus.TaskRoleStatuses)
	if len(raw) <= 3<<19 {
		t.Fatalf("the uncompressed statuses are %d bytes: the test must exceed etcd's 1.5 MiB to mean anything", len(raw))
	}
	if err := env.Client.Status().Update(ctx, fw); err != nil {
		t.Fatalf("status of 5000 completed tasks (%d bytes uncompressed): %v", len(raw), err)
	}
	got := &v1.Framework{}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(fw), got); err != nil {
		t.Fatal(err)
	}
	if n := len(got.Status.AttemptStatus.TaskRoleStatuses); n != 2 || len(got.Status.AttemptStatus.TaskRoleStatuses[1].TaskStatuses) != 2500 {
		t.Fatalf("read back %d roles", n)
	}
}

// framework.json must stay readable with jq: IndentUncompressed writes the
// task statuses plainly at any size, and exactly as json.MarshalIndent
// does when they are small.
func TestIndentUncompressed(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC))
	fw := &v1.Framework{TypeMeta: metav1.TypeMeta{APIVersion: "podkit.dev/v1alpha1", Kind: "Framework"},
		ObjectMeta: metav1.ObjectMeta{Name: "f", Namespace: "n"},
		Status: &v1.FrameworkStatus{StartTime: now, State: v1.FrameworkAttemptRunning, TransitionTime: now,
			AttemptStatus: v1.FrameworkAttemptStatus{ConfigMapName: "f-attempt", TaskRoleStatuses: []v1.TaskRoleStatus{completedTasks("w", 3)}}}}
	want, _ := json.MarshalIndent(fw, "", "  ")
	got, err := v1.IndentUncompressed(fw)
	if err != nil || string(got) != string(want) {
		t.Fatalf("small Framework: IndentUncompressed differs from json.MarshalIndent (%v):\n%s\nvs\n%s", err, got, want)
	}
	fw.Status.AttemptStatus.TaskRoleStatuses = []v1.TaskRoleStatus{completedTasks("w", 2000)}
	got, err = v1.IndentUncompressed(fw)
	if err != nil || bytes.Contains(got, []byte("taskRoleStatusesCompressed")) || !bytes.Contains(got, []byte(`"podName": "a-framework-name-w-1999"`)) {
		t.Fatalf("2000 tasks: want plain task statuses (err %v, %d bytes)", err, len(got))
	}
}

// The barrier's framework.json is compact, as FrameworkController's barrier
// writes it: MarshalUncompressed is json.Marshal with the task statuses
// plain at any size.
func TestMarshalUncompressed(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC))
	fw := &v1.Framework{TypeMeta: metav1.TypeMeta{APIVersion: "podkit.dev/v1alpha1", Kind: "Framework"},
		ObjectMeta: metav1.ObjectMeta{Name: "f", Namespace: "n"},
		Status: &v1.FrameworkStatus{StartTime: now, State: v1.FrameworkAttemptRunning, TransitionTime: now,
			AttemptStatus: v1.FrameworkAttemptStatus{ConfigMapName: "f-attempt", TaskRoleStatuses: []v1.TaskRoleStatus{completedTasks("w", 3)}}}}
	want, _ := json.Marshal(fw)
	got, err := v1.MarshalUncompressed(fw)
	if err != nil || string(got) != string(want) {
		t.Fatalf("small Framework: MarshalUncompressed differs from json.Marshal (%v):\n%s\nvs\n%s", err, got, want)
	}
	fw.Status.AttemptStatus.TaskRoleStatuses = []v1.TaskRoleStatus{completedTasks("w", 2000)}
	got, err = v1.MarshalUncompressed(fw)
	if err != nil || bytes.Contains(got, []byte("taskRoleStatusesCompressed")) || !bytes.Contains(got, []byte(`"podName":"a-framework-name-w-1999"`)) {
		t.Fatalf("2000 tasks: want plain task statuses (err %v, %d bytes)", err, len(got))
	}
}
