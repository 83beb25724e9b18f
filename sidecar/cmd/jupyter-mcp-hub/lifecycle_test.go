package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/hubroute"
)

// staleEnv makes the test binary a stand-in for a router left running
// (TestMain): "stops" exits on SIGTERM, "ignores" ignores it.
const staleEnv = "JUPYTER_MCP_HUB_TEST_STALE"

func TestMain(m *testing.M) {
	switch os.Getenv(staleEnv) {
	case "":
		os.Exit(m.Run())
	case "ignores":
		signal.Ignore(syscall.SIGTERM)
	case "stops":
		signal.Reset(syscall.SIGTERM)
	}
	fmt.Println("ready")
	select {}
}

// stale starts a stand-in for a router left running, in mode (staleEnv),
// once it is ready for signals.
func stale(t *testing.T, mode string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), staleEnv+"="+mode)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("the stand-in router did not start: %q %v", line, err)
	}
	// Reaped as soon as it exits, as init would reap an orphan.
	go func() { _ = cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return cmd
}

// A router whose hub is gone notices: its parent is no longer the hub's
// pid (a process whose parent dies is given to another).
func TestHubGone(t *testing.T) {
	for _, tc := range []struct {
		name    string
		parents []int // what getppid answers, one check after another; the last repeats
		gone    bool
	}{
		{"the hub runs on", []int{42}, false},
		{"the hub dies later", []int{42, 42, 42, 1}, true},
		{"given to a subreaper", []int{42, 7}, true},
		{"gone before the first check", []int{1}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var checks atomic.Int32
			parent := func() int {
				n := int(checks.Add(1)) - 1
				return tc.parents[min(n, len(tc.parents)-1)]
			}
			gone := hubGone(t.Context(), 42, time.Millisecond, parent)
			if tc.gone {
				select {
				case <-gone:
				case <-time.After(5 * time.Second):
					t.Fatalf("hub not gone after %d checks", checks.Load())
				}
				if n := int(checks.Load()); n < len(tc.parents) {
					t.Fatalf("hub gone after %d checks, before its parent changed", n)
				}
				return
			}
			deadline := time.Now().Add(5 * time.Second)
			for checks.Load() < 5 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond) // polling the checks made
			}
			select {
			case <-gone:
				t.Fatalf("hub gone after %d checks, want running", checks.Load())
			default:
			}
		})
	}
}

// A router that starts stops the one its pid file names, if that still
// runs and is a router; anything else it leaves alone.
func TestReplaceStale(t *testing.T) {
	self := filepath.Base(os.Args[0])    // the stand-ins' name
	other, err := exec.LookPath("sleep") // another program
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		content  func(t *testing.T) (string, *exec.Cmd) // the pid file's, and its process
		stopped  bool                                   // the process is stopped (SIGSTOP)
		replaced bool
		graceful bool // it stops on SIGTERM, within the wait
	}{
		{"no pid file", nil, false, false, false},
		{"not a pid", func(*testing.T) (string, *exec.Cmd) { return "router\n", nil }, false, false, false},
		{"this router's own pid", func(*testing.T) (string, *exec.Cmd) { return strconv.Itoa(os.Getpid()), nil }, false, false, false},
		{"a pid no process has", func(t *testing.T) (string, *exec.Cmd) {
			cmd := exec.Command(other, "0")
			if err := cmd.Run(); err != nil {
				t.Fatal(err)
			}
			return strconv.Itoa(cmd.Process.Pid), nil
		}, false, false, false},
		{"another program's process", func(t *testing.T) (string, *exec.Cmd) {
			cmd := exec.Command(other, "60")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { _ = cmd.Wait() }()
			t.Cleanup(func() { _ = cmd.Process.Kill() })
			return strconv.Itoa(cmd.Process.Pid) + "\n", cmd
		}, false, false, false},
		{"a router that stops when asked", func(t *testing.T) (string, *exec.Cmd) {
			cmd := stale(t, "stops")
			return strconv.Itoa(cmd.Process.Pid) + "\n", cmd
		}, false, true, true},
		{"a stopped router", func(t *testing.T) (string, *exec.Cmd) {
			cmd := stale(t, "stops")
			return strconv.Itoa(cmd.Process.Pid) + "\n", cmd
		}, true, true, true},
		{"a router that ignores SIGTERM", func(t *testing.T) (string, *exec.Cmd) {
			cmd := stale(t, "ignores")
			return strconv.Itoa(cmd.Process.Pid) + "\n", cmd
		}, false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "jupyter-mcp-hub.pid")
			var proc *exec.Cmd
			if tc.content != nil {
				var content string
				content, proc = tc.content(t)
				if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tc.stopped {
				if err := proc.Process.Signal(syscall.SIGSTOP); err != nil {
					t.Fatal(err)
				}
			}
			const wait = 2 * time.Second
			start := time.Now()
			pid, err := replaceStale(path, self, wait)
			took := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.graceful && took >= wait:
				t.Fatalf("replaceStale took %s: the router was killed, want it stopped by SIGTERM", took)
			case tc.replaced && !tc.graceful && took < wait:
				t.Fatalf("replaceStale took %s: a router that ignores SIGTERM is killed only after the wait (%s)", took, wait)
			case tc.replaced && (pid != proc.Process.Pid || running(pid)):
				t.Fatalf("replaceStale = %d (running %v), want %d stopped", pid, pid != 0 && running(pid), proc.Process.Pid)
			case !tc.replaced && pid != 0:
				t.Fatalf("replaceStale = %d, want nothing replaced", pid)
			case !tc.replaced && proc != nil && !running(proc.Process.Pid):
				t.Fatal("a process that is not a router was stopped")
			}
		})
	}
}

func TestPIDFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jupyter-mcp-hub.pid")
	if err := writePIDFile(path); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(path); err != nil || string(data) != strconv.Itoa(os.Getpid())+"\n" {
		t.Fatalf("pid file %q %v, want this process's pid", data, err)
	}
	removePIDFile(path)
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the router's own pid file is left: %v", err)
	}
	// A router that replaced this one wrote its own: it stays.
	if err := os.WriteFile(path, []byte("1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	removePIDFile(path)
	if data, err := os.ReadFile(path); err != nil || string(data) != "1\n" {
		t.Fatalf("another router's pid file: %q %v, want it kept", data, err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Fatalf("files left beside the pid file: %v", entries)
	}
}

// A router whose hub is gone before it starts refuses to start.
func TestRunHubGoneAtStart(t *testing.T) {
	cfg := hubroute.Config{StartTimeout: time.Second, Log: zerolog.Nop(), Limits: hubroute.Limits{MaxRequests: 1, MaxUserRequests: 1}}
	err := run("127.0.0.1:0", "http://127.0.0.1:1/hub/api", "http://127.0.0.1:1", lifeFlags{hubPID: os.Getppid() + 1}, cfg, signInFlags{})
	if !errors.Is(err, errHubGone) || !strings.Contains(err.Error(), "is not the router's parent") {
		t.Fatalf("run with the pid of a hub that is not its parent: %v", err)
	}
}
