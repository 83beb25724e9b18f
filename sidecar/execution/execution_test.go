package execution

import (
	"testing"
	"time"
)

func newTestExecution(id string) *Execution {
	return &Execution{ID: id, started: time.Now(), status: StatusQueued, changed: make(chan struct{}), done: make(chan struct{}), cancel: func() {}}
}

// A finished execution stays findable for keepFinished, then the next run
// started drops it, so the table does not grow with every call.
func TestExecutionsForgetOldFinishedRuns(t *testing.T) {
	var x Executions
	old, recent, running := newTestExecution("old"), newTestExecution("recent"), newTestExecution("running")
	old.finished = time.Now().Add(-keepFinished - time.Minute)
	recent.finished = time.Now().Add(-time.Minute)
	for _, e := range []*Execution{old, recent, running} {
		x.add(e)
	}
	x.add(newTestExecution("new"))
	if x.Get("old") != nil {
		t.Error("an execution finished more than keepFinished ago is still kept")
	}
	for _, id := range []string{"recent", "running", "new"} {
		if x.Get(id) == nil {
			t.Errorf("execution %s was dropped", id)
		}
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
