package entrypoint

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func nextActivation(t *testing.T, a *FileActivationHandler) ActivationEvent {
	t.Helper()
	select {
	case ev := <-a.GetWasChangedChannel():
		return ev
	case <-time.After(30 * time.Second):
		t.Fatal("no activation event")
		return ActivationEvent{}
	}
}

func TestActivationReportsInitialStateAndEachChange(t *testing.T) {
	for _, initial := range []bool{false, true} {
		t.Run(map[bool]string{false: "starts as backup", true: "starts active"}[initial], func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "active")
			if initial {
				if err := os.WriteFile(file, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			a, err := NewActivationHandler(file, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			if ev := nextActivation(t, a); ev.State != initial || ev.Error != nil {
				t.Fatalf("initial event = %+v, want state %v", ev, initial)
			}
			want := !initial
			for range 3 {
				if want {
					err = os.WriteFile(file, []byte("x"), 0o644)
				} else {
					err = os.Remove(file)
				}
				if err != nil {
					t.Fatal(err)
				}
				if ev := nextActivation(t, a); ev.State != want || ev.Error != nil {
					t.Fatalf("event = %+v, want state %v", ev, want)
				}
				want = !want
			}
		})
	}
}

func TestActivationIgnoresOtherFilesAndClosesChannel(t *testing.T) {
	dir := t.TempDir()
	a, err := NewActivationHandler(filepath.Join(dir, "active"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if ev := nextActivation(t, a); ev.State {
		t.Fatalf("initial = %+v, want backup", ev)
	}
	if err := os.WriteFile(filepath.Join(dir, "other"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "active"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if ev := nextActivation(t, a); !ev.State {
		t.Fatalf("event = %+v, want active (the unrelated file must not produce an event)", ev)
	}
	a.Close()
	if _, ok := <-a.GetWasChangedChannel(); ok {
		t.Error("channel still open after Close")
	}
}
