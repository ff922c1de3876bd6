package v1alpha1

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CompressionMinBytes is the size of the task statuses' JSON from which
// they are written compressed (FrameworkController's
// LargeFrameworkCompressionMinBytes).
const CompressionMinBytes = 100 * 1024

// MaxDecompressedBytes bounds what a compressed status may expand to, so
// that a hostile status cannot exhaust a reader's memory. 5000 completed
// tasks take about 4 MB.
const MaxDecompressedBytes = 64 << 20

// attemptStatusJSON has FrameworkAttemptStatus's fields without its
// methods, for the default encoding.
type attemptStatusJSON FrameworkAttemptStatus

// MarshalJSON writes the task statuses compressed into
// taskRoleStatusesCompressed once their JSON reaches CompressionMinBytes.
// The statuses are encoded once either way.
func (s FrameworkAttemptStatus) MarshalJSON() ([]byte, error) {
	// TaskRoleStatuses shadows the embedded field, so the statuses already
	// encoded to measure them are written as they are.
	out := struct {
		attemptStatusJSON
		TaskRoleStatuses json.RawMessage `json:"taskRoleStatuses,omitempty"`
	}{attemptStatusJSON: attemptStatusJSON(s)}
	if len(s.TaskRoleStatuses) > 0 {
		raw, err := json.Marshal(s.TaskRoleStatuses)
		if err != nil {
			return nil, fmt.Errorf("encode task role statuses: %w", err)
		}
		if len(raw) < CompressionMinBytes {
			out.TaskRoleStatuses = raw
		} else {
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
			if _, err := zw.Write(raw); err != nil {
				return nil, fmt.Errorf("compress task role statuses: %w", err)
			}
			if err := zw.Close(); err != nil {
				return nil, fmt.Errorf("compress task role statuses: %w", err)
			}
			out.TaskRoleStatusesCompressed = buf.Bytes()
		}
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads either form; compressed statuses are expanded into
// TaskRoleStatuses, at most MaxDecompressedBytes of them.
func (s *FrameworkAttemptStatus) UnmarshalJSON(data []byte) error {
	var in attemptStatusJSON
	if err := json.Unmarshal(data, &in); err != nil {
		return err
	}
	if in.TaskRoleStatuses == nil && len(in.TaskRoleStatusesCompressed) > 0 {
		raw, err := DecompressTaskRoleStatuses(in.TaskRoleStatusesCompressed)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(raw, &in.TaskRoleStatuses); err != nil {
			return fmt.Errorf("attemptStatus.taskRoleStatusesCompressed: %w", err)
		}
	}
	in.TaskRoleStatusesCompressed = nil
	*s = FrameworkAttemptStatus(in)
	return nil
}

// DecompressTaskRoleStatuses expands taskRoleStatusesCompressed into the
// JSON of the task role statuses, at most MaxDecompressedBytes of it. It
// lets a reader that needs a few fields of the statuses (the barrier: pod
// IPs) decode those alone.
func DecompressTaskRoleStatuses(compressed []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(compressed))
	if err != nil {
		return nil, fmt.Errorf("attemptStatus.taskRoleStatusesCompressed: %w", err)
	}
	// The gzip trailer holds the size modulo 2^32: a hint for one
	// allocation instead of ReadAll's doublings, never trusted beyond the
	// limit.
	var buf bytes.Buffer
	if n := len(compressed); n >= 4 {
		size := int(binary.LittleEndian.Uint32(compressed[n-4:]))
		buf.Grow(min(size, MaxDecompressedBytes) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(io.LimitReader(zr, MaxDecompressedBytes+1)); err != nil {
		return nil, fmt.Errorf("attemptStatus.taskRoleStatusesCompressed: %w", err)
	}
	if buf.Len() > MaxDecompressedBytes {
		return nil, fmt.Errorf("attemptStatus.taskRoleStatusesCompressed: expands beyond %d bytes", MaxDecompressedBytes)
	}
	return buf.Bytes(), nil
}

// IndentUncompressed returns f's indented JSON with the task statuses
// written plainly whatever their size, for files people read with jq.
func IndentUncompressed(f *Framework) ([]byte, error) {
	return json.MarshalIndent(uncompressed(f), "", "  ")
}

// MarshalUncompressed returns f's JSON with the task statuses written
// plainly whatever their size (the barrier's framework.json, compact as
// FrameworkController's barrier writes it).
func MarshalUncompressed(f *Framework) ([]byte, error) {
	return json.Marshal(uncompressed(f))
}

// uncompressed is f with an encoding that writes the task statuses plainly.
func uncompressed(f *Framework) any {
	type status struct {
		*FrameworkStatus
		// Shadows the embedded field: the plain encoding, no compression.
		AttemptStatus attemptStatusJSON `json:"attemptStatus"`
	}
	type framework struct {
		metav1.TypeMeta
		ObjectMeta metav1.ObjectMeta `json:"metadata,omitempty"`
		Spec       FrameworkSpec     `json:"spec"`
		Status     *status           `json:"status,omitempty"`
	}
	out := framework{TypeMeta: f.TypeMeta, ObjectMeta: f.ObjectMeta, Spec: f.Spec}
	if f.Status != nil {
		out.Status = &status{FrameworkStatus: f.Status, AttemptStatus: attemptStatusJSON(f.Status.AttemptStatus)}
	}
	return out
}
