package execution

import (
	"encoding/json"
	"testing"
	"time"
)

func newTestExecution(id string) *Execution {
	return &Execution{ID: id, started: time.Now(), status: StatusQueued, changed: make(chan struct{}), done: make(chan struct{}), cancel: func() {}}
}

// A finished execution stays findable for keepFinished, and while the
// outputs of those finished after it stay under keepBytes; running ones
// always, and the newest finished one however large.
func TestExecutionsForgetOldFinishedRuns(t *testing.T) {
	big := json.RawMessage(make([]byte, keepBytes/2)) // shared: the test holds 32 MiB once
	finished := func(id string, ago time.Duration, outputs ...json.RawMessage) *Execution {
		e := newTestExecution(id)
		e.finished = time.Now().Add(-ago)
		e.steps = []*Step{{Outputs: outputs}}
		return e
	}
	for _, tc := range []struct {
		name       string
		finished   []*Execution // retired in this order
		kept, gone []string
	}{
		{"an hour", []*Execution{finished("old", keepFinished+time.Minute), finished("recent", time.Minute)}, []string{"recent"}, []string{"old"}},
		{"bytes", []*Execution{finished("a", 3*time.Minute, big), finished("b", 2*time.Minute, big), finished("c", time.Minute, big)}, []string{"b", "c"}, []string{"a"}},
		{"the newest stays", []*Execution{finished("small", 2*time.Minute), finished("huge", time.Minute, big, big, big)}, []string{"huge"}, []string{"small"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var x Executions
			running := newTestExecution("running")
			x.add(running)
			for _, e := range tc.finished {
				x.add(e)
				x.retire(e)
			}
			x.add(newTestExecution("new"))
			for _, id := range append(tc.kept, "running", "new") {
				if x.Get(id) == nil {
					t.Errorf("execution %s was dropped", id)
				}
			}
			for _, id := range tc.gone {
				if x.Get(id) != nil {
					t.Errorf("execution %s is still kept", id)
				}
			}
		})
	}
}

func TestSendInputNeedsAPrompt(t *testing.T) {
	e := newTestExecution("x1")
	if err := e.SendInput("42"); err == nil {
		t.Fatal("SendInput without a pending prompt succeeded")
	}
	var got string
	e.input = &inputRequest{prompt: "name? ", reply: func(v string) error { got = v; return nil }}
	e.status = StatusInput
	changed := e.Snapshot().Changed
	if s := e.Snapshot(); s.Status != StatusInput || s.Prompt != "name? " {
		t.Fatalf("snapshot = %+v, want needs_input with the prompt", s)
	}
	if err := e.SendInput("Ada"); err != nil || got != "Ada" {
		t.Fatalf("SendInput = %v, reply got %q", err, got)
	}
	select {
	case <-changed:
	default:
		t.Fatal("answering the prompt did not wake those waiting on the execution")
	}
	if s := e.Snapshot(); s.Status != StatusRunning || s.Prompt != "" {
		t.Fatalf("after the answer: %+v, want running without a prompt", s)
	}
}

// A snapshot tells when the run started and last changed (a task's
// createdAt and lastUpdatedAt).
func TestSnapshotTimes(t *testing.T) {
	e := newTestExecution("x1")
	e.started = time.Now().Add(-time.Minute)
	e.updated = e.started
	if s := e.Snapshot(); !s.Started.Equal(e.started) || !s.Updated.Equal(e.started) {
		t.Fatalf("snapshot times %v, %v; want both %v", s.Started, s.Updated, e.started)
	}
	e.set(func() { e.lastLine = "x" })
	if s := e.Snapshot(); !s.Updated.After(s.Started) || !s.Started.Equal(e.started) {
		t.Fatalf("after a change: started %v, updated %v", s.Started, s.Updated)
	}
}
