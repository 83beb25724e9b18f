package main

// Tying the router to the hub that starts it. JupyterHub starts a managed
// service in a session of its own, so a hub that dies without stopping it
// (SIGKILL, a crash, the OOM killer) leaves it running, pointed at a proxy
// the next hub replaces and holding the port the next router needs. So the
// router stops when the hub that started it is gone (--hub-pid), and a
// router that starts replaces the one its pid file names (--pid-file), as
// JupyterHub does for configurable-http-proxy.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// errHubGone ends a router whose hub is gone: it exits non-zero, as it
// stopped without being asked to.
var errHubGone = errors.New("the hub that started the router is gone")

// parentCheck is how often the router looks for its hub.
const parentCheck = 250 * time.Millisecond

// hubGone returns a channel closed once hubPID is no longer the parent
// (parent returns it) of the router, checked every interval until ctx ends:
// a process whose parent dies is given to another, so a parent pid that
// changes is a hub that is gone, and a pid the system gives to a new
// process cannot pass for the hub.
func hubGone(ctx context.Context, hubPID int, interval time.Duration, parent func() int) <-chan struct{} {
	gone := make(chan struct{})
	go func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for parent() == hubPID {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
		close(gone)
	}()
	return gone
}

// staleWait is how long a stale router may take to stop before it is
// killed: its hub is gone, so are the clients of its calls.
const staleWait = 5 * time.Second

// replaceStale stops the process the pid file at path names if it is
// still a running `name` (its command's base name, so that a pid given to
// another program since is left alone): SIGTERM and SIGCONT (a stopped
// process must run to stop), up to wait for it to exit, then SIGKILL. It
// returns the pid it stopped, 0 if there was none.
func replaceStale(path, name string, wait time.Duration) (int, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("--pid-file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 || pid == os.Getpid() || !running(pid) || command(pid) != name {
		return 0, nil
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	_ = syscall.Kill(pid, syscall.SIGCONT)
	if exited(pid, wait) {
		return pid, nil
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	if exited(pid, time.Second) {
		return pid, nil
	}
	return 0, fmt.Errorf("the router before this one (pid %d, in %s) does not stop, even killed", pid, path)
}

// exited waits up to d for pid to be no longer running.
func exited(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for running(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond) // a process that is not ours: nothing to wait on
	}
	return true
}

// running reports whether pid is a process that has not exited (an exited
// one its parent has not reaped yet, a zombie, does not run).
func running(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// "pid (command) state …": the command may hold spaces and parentheses.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return false
	}
	state := stat[i+2]
	return state != 'Z' && state != 'X'
}

// command is the base name of the program pid runs ("" if unknown).
func command(pid int) string {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(cmdline) == 0 {
		return ""
	}
	argv0, _, _ := bytes.Cut(cmdline, []byte{0})
	return filepath.Base(string(argv0))
}

// writePIDFile puts the router's pid in path, whole or not at all.
func writePIDFile(path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("--pid-file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := fmt.Fprintf(tmp, "%d\n", os.Getpid()); err != nil {
		tmp.Close()
		return fmt.Errorf("--pid-file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("--pid-file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("--pid-file: %w", err)
	}
	return nil
}

// removePIDFile removes path if it still names this router (a router that
// replaced it wrote its own).
func removePIDFile(path string) {
	if data, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(data)) == strconv.Itoa(os.Getpid()) {
		_ = os.Remove(path)
	}
}
