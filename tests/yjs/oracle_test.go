// Package yjs_test holds the differential tests of sidecar/yjs against two
// independent Yjs implementations: Yjs itself on Node and pycrdt (yrs) on
// Python; and of sidecar/changes' undo against Yjs's UndoManager. Both run as long-lived oracle processes (tests/oracles) speaking a
// line-based JSON protocol, so thousands of seeds cost no process spawns.
// A missing oracle fails the tests with install instructions; it never skips.
package yjs_test

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

const installHint = "install the oracles with `make oracles` (npm ci --prefix tests/oracles && .venv/bin/pip install -r tests/oracles/requirements.txt)"

// oracle is a running oracle process.
type oracle struct {
	name string
	mu   sync.Mutex
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	err  error
}

var (
	oracleMu sync.Mutex
	oracles  = map[string]*oracle{}
)

// repoRoot walks up from the working directory to the directory with go.mod.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("cannot find the repository root (go.mod)")
		}
		dir = parent
	}
}

// yjsOracle returns the Node/Yjs oracle, starting it on first use.
func yjsOracle(t testing.TB) *oracle {
	root := repoRoot(t)
	node := os.Getenv("ORACLE_NODE")
	if node == "" {
		node = "node"
	}
	script := filepath.Join(root, "tests", "oracles", "yjs_oracle.mjs")
	if _, err := os.Stat(filepath.Join(root, "tests", "oracles", "node_modules", "yjs", "package.json")); err != nil {
		t.Fatalf("Yjs oracle: tests/oracles/node_modules/yjs is missing; %s", installHint)
	}
	return startOracle(t, "yjs", node, script)
}

// pycrdtOracle returns the Python/pycrdt oracle, starting it on first use.
func pycrdtOracle(t testing.TB) *oracle {
	root := repoRoot(t)
	py := os.Getenv("ORACLE_PYTHON")
	if py == "" {
		py = filepath.Join(root, ".venv", "bin", "python")
	}
	if _, err := exec.LookPath(py); err != nil {
		t.Fatalf("pycrdt oracle: python %s not found (set ORACLE_PYTHON or create .venv); %s", py, installHint)
	}
	return startOracle(t, "pycrdt", py, filepath.Join(root, "tests", "oracles", "pycrdt_oracle.py"))
}

func startOracle(t testing.TB, name, bin, script string) *oracle {
	t.Helper()
	oracleMu.Lock()
	defer oracleMu.Unlock()
	if o := oracles[name]; o != nil {
		if o.err != nil {
			t.Fatalf("%s oracle unavailable: %v; %s", name, o.err, installHint)
		}
		return o
	}
	o := &oracle{name: name}
	oracles[name] = o
	o.cmd = exec.Command(bin, script)
	o.cmd.Stderr = os.Stderr
	var err error
	if o.in, err = o.cmd.StdinPipe(); err == nil {
		var stdout io.ReadCloser
		if stdout, err = o.cmd.StdoutPipe(); err == nil {
			o.out = bufio.NewReaderSize(stdout, 1<<20)
			err = o.cmd.Start()
		}
	}
	if err == nil {
		var pong map[string]any
		err = o.roundTrip(map[string]any{"op": "ping"}, &pong)
	}
	if err != nil {
		o.err = err
		t.Fatalf("%s oracle (%s %s) failed to start: %v; %s", name, bin, script, err, installHint)
	}
	return o
}

// roundTrip sends one request line and decodes the reply line.
func (o *oracle) roundTrip(req any, reply any) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if _, err := o.in.Write(append(b, '\n')); err != nil {
		return err
	}
	line, err := o.out.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("reading oracle reply: %w", err)
	}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(line, &e) == nil && e.Error != "" {
		return fmt.Errorf("oracle error: %s", e.Error)
	}
	return json.Unmarshal(line, reply)
}

func (o *oracle) call(t testing.TB, req any, reply any) {
	t.Helper()
	if err := o.roundTrip(req, reply); err != nil {
		t.Fatalf("%s oracle: %v", o.name, err)
	}
}

// session is a random editing session produced by an oracle.
type session struct {
	Updates []string `json:"updates"`
	JSON    any      `json:"json"`
	State   string   `json:"state"`
	SV      string   `json:"sv"`
}

type applyReply struct {
	JSON    any    `json:"json"`
	SV      string `json:"sv"`
	State   string `json:"state"`
	Diff    string `json:"diff"`
	Pending bool   `json:"pending"`
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func unb64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// canonical converts any JSON-ish value (Go ToJSON output or a decoded oracle
// reply) to the form encoding/json gives, so the two compare with DeepEqual:
// numbers become float64, []byte becomes {"$bytes": base64}.
func canonical(v any) any {
	var conv func(v any) any
	conv = func(v any) any {
		switch x := v.(type) {
		case []byte:
			return map[string]any{"$bytes": b64(x)}
		case []any:
			out := make([]any, len(x))
			for i, e := range x {
				out[i] = conv(e)
			}
			return out
		case map[string]any:
			out := make(map[string]any, len(x))
			for k, e := range x {
				out[k] = conv(e)
			}
			return out
		}
		return v
	}
	b, err := json.Marshal(conv(v))
	if err != nil {
		panic(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

func jsonEqual(a, b any) bool { return reflect.DeepEqual(canonical(a), canonical(b)) }

func show(v any) string {
	b, _ := json.Marshal(canonical(v))
	if len(b) > 3000 {
		return string(b[:3000]) + "..."
	}
	return string(b)
}

// envInt reads a positive integer knob, e.g. YJS_SEEDS=5000 for a longer run.
func envInt(name string, def int) int {
	if s := os.Getenv(name); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return n
		}
	}
	return def
}

// histories counts the seeded histories each suite checked, by suite.
var histories = struct {
	sync.Mutex
	n map[string]int
}{n: map[string]int{}}

// checked adds the n histories a suite checked, if it passed.
func checked(t *testing.T, suite string, n int) {
	if t.Failed() {
		return
	}
	histories.Lock()
	defer histories.Unlock()
	histories.n[suite] += n
}

// TestMain prints, once per package run, how many seeded histories the
// suites checked against the oracles (go test ./... shows it with -v, as
// make test runs this package).
func TestMain(m *testing.M) {
	code := m.Run()
	histories.Lock()
	total := 0
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(histories.n)) {
		total += histories.n[k]
		parts = append(parts, fmt.Sprintf("%s %d", k, histories.n[k]))
	}
	histories.Unlock()
	fmt.Printf("seeded histories checked against the oracles: %d (%s)\n", total, strings.Join(parts, ", "))
	os.Exit(code)
}
