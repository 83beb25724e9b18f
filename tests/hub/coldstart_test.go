package hub

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

// coldStart is one start of a stopped server by an MCP call through the
// hub URL, with the moment of each step read where it happens: the
// client's clock, Docker's events, the container's log (the lab's, the
// sidecar's), the hub's log (the hub's, its proxy's). One host, one clock.
type coldStart struct {
	call        time.Time // the client sends the call that starts the server
	initialized time.Time // a new client: initialize answered (else zero)
	result      time.Time // the tool's result is in

	created, started     time.Time // Docker: the container created, started
	labLog, labListening time.Time // the lab's first log line; "is running at"
	labAnswered          time.Time // the lab's log of its first answer to <server>/api
	hubReady             time.Time // the hub: "User <name> took ... to start"
	routed               time.Time // the hub's proxy: "Route added /user/<name>"
	// hubAnswered: the hub tells the router the server is ready, in its
	// answer to the start (201) or at the end of the start's progress.
	hubAnswered time.Time
	sidecar     time.Time // the sidecar's first log line
	// progress is when each progress note of the router reached the
	// client (a call asking for progress).
	progress []time.Time
	// cpu is the CPU time the container used from its start to just
	// after the result (the lab's start, the sidecar's, the calls'):
	// the machine's load changes it far less than the wall times.
	cpu time.Duration
	// hubMissed counts the hub's checks of the new server that found it
	// not answering yet ("Failed to connect to ...").
	hubMissed int
}

// phase is a step of a cold start: from one moment to the next.
type phase struct {
	what string
	from func(c *coldStart) time.Time
	to   func(c *coldStart) time.Time
}

var startPhases = []phase{
	{"the router asks the hub, the hub asks Docker (call → container created)", (*coldStart).callAt, (*coldStart).createdAt},
	{"Docker starts the container (created → started)", (*coldStart).createdAt, (*coldStart).startedAt},
	{"the lab's Python starts, imports (started → its first log line)", (*coldStart).startedAt, (*coldStart).labLogAt},
	{"the lab loads its extensions (→ \"is running at\")", (*coldStart).labLogAt, (*coldStart).labListeningAt},
	{"the lab answers its first request (→ its log of GET <server>/api)", (*coldStart).labListeningAt, (*coldStart).labAnsweredAt},
	{"the hub takes it into use (→ hub \"took ... to start\")", (*coldStart).labAnsweredAt, (*coldStart).hubReadyAt},
	{"the hub adds its proxy's route (→ \"Route added\")", (*coldStart).hubReadyAt, (*coldStart).routedAt},
	{"the hub tells the router (→ its 201 to the start, or its progress's end)", (*coldStart).routedAt, (*coldStart).hubAnsweredAt},
	{"the router forwards, the lab starts the sidecar (→ sidecar's first line)", (*coldStart).hubAnsweredAt, (*coldStart).sidecarAt},
}

func (c *coldStart) callAt() time.Time         { return c.call }
func (c *coldStart) createdAt() time.Time      { return c.created }
func (c *coldStart) startedAt() time.Time      { return c.started }
func (c *coldStart) labLogAt() time.Time       { return c.labLog }
func (c *coldStart) labListeningAt() time.Time { return c.labListening }
func (c *coldStart) labAnsweredAt() time.Time  { return c.labAnswered }
func (c *coldStart) hubReadyAt() time.Time     { return c.hubReady }
func (c *coldStart) routedAt() time.Time       { return c.routed }
func (c *coldStart) hubAnsweredAt() time.Time  { return c.hubAnswered }
func (c *coldStart) sidecarAt() time.Time      { return c.sidecar }
func (c *coldStart) initializedAt() time.Time  { return c.initialized }
func (c *coldStart) resultAt() time.Time       { return c.result }
func (c *coldStart) firstProgressAt() time.Time {
	return c.progress[0]
}
func (c *coldStart) lastProgressAt() time.Time { return c.progress[len(c.progress)-1] }

// coldRounds is how many cold starts each way BenchmarkHubColdStart makes:
// the machine is shared, one start alone says little.
const coldRounds = 3

// BenchmarkHubColdStart prints where the time goes from an MCP call through
// <hub>/services/mcp that finds its user's server stopped to the tool's
// result, two ways: a new client (initialize starts the server, then
// list_notebooks) and a client whose server stopped under it (its next
// call, asking for progress, starts it). Medians of coldRounds starts
// each; `make bench` runs it.
func BenchmarkHubColdStart(b *testing.B) {
	for range b.N {
		name := "cold" + randomHex(3) // no character Docker's names escape
		if err := theHub.createUser(name); err != nil {
			b.Fatal(err)
		}
		tok, err := theHub.userToken(name)
		if err != nil {
			b.Fatal(err)
		}
		// The first start ever makes the user's volume; later ones, the
		// ones measured, find it.
		if err := theHub.startServer(name); err != nil {
			b.Fatal(err)
		}
		var fresh, connected []*coldStart
		for range coldRounds {
			if err := theHub.stopServer(name); err != nil {
				b.Fatal(err)
			}
			fresh = append(fresh, coldNewClient(b, name, tok))
		}
		var mu sync.Mutex
		var notes []time.Time
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "hub-bench", Version: "v0"}, &mcp.ClientOptions{
			ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) {
				mu.Lock()
				defer mu.Unlock()
				notes = append(notes, time.Now())
			},
		}).Connect(b.Context(), &mcp.StreamableClientTransport{
			Endpoint: theHub.URL + "/services/mcp", HTTPClient: labtest.AuthClient("token " + tok), MaxRetries: -1}, nil)
		if err != nil {
			b.Fatal(err)
		}
		for range coldRounds {
			if err := theHub.stopServer(name); err != nil {
				b.Fatal(err)
			}
			mu.Lock()
			notes = nil
			mu.Unlock()
			c := &coldStart{call: time.Now()}
			res, err := cs.CallTool(b.Context(), &mcp.CallToolParams{Name: "list_notebooks", Meta: mcp.Meta{"progressToken": "cold"}})
			c.result = time.Now()
			if err != nil || res.IsError {
				b.Fatalf("list_notebooks starting the server: %v %s", err, labtest.ResultText(res))
			}
			mu.Lock()
			c.progress = slices.Clone(notes)
			mu.Unlock()
			if len(c.progress) == 0 {
				b.Fatal("no progress notes while the server started")
			}
			if err := c.read(theHub, name); err != nil {
				b.Fatal(err)
			}
			connected = append(connected, c)
		}
		cs.Close()

		fmt.Printf("\nCold start through <hub>/services/mcp (2-core machine, no CPU limit; median of %d starts each, from their logs)\n", coldRounds)
		fmt.Println("a new client: initialize finds the server stopped, then list_notebooks")
		printPhases(fresh, append(slices.Clone(startPhases),
			phase{"the sidecar answers initialize (→ at the client)", (*coldStart).sidecarAt, (*coldStart).initializedAt},
			phase{"the tool call (→ its result)", (*coldStart).initializedAt, (*coldStart).resultAt},
		))
		fmt.Println("a client whose server stopped: its next call (list_notebooks, asking for progress) starts it")
		printPhases(connected, append(slices.Clone(startPhases),
			phase{"the sidecar answers the call (→ its result)", (*coldStart).sidecarAt, (*coldStart).resultAt},
		))
		fmt.Printf("  the router's progress notes at the client: first %d ms, last (ready) %d ms after the call\n",
			medianOf(connected, (*coldStart).callAt, (*coldStart).firstProgressAt).Milliseconds(), medianOf(connected, (*coldStart).callAt, (*coldStart).lastProgressAt).Milliseconds())
		missed := 0
		for _, c := range append(slices.Clone(fresh), connected...) {
			missed += c.hubMissed
		}
		fmt.Printf("  the hub's readiness checks that found the server not answering yet: %d in %d starts\n", missed, 2*coldRounds)
		cpu := make([]time.Duration, 0, 2*coldRounds)
		for _, c := range append(slices.Clone(fresh), connected...) {
			cpu = append(cpu, c.cpu)
		}
		slices.Sort(cpu)
		fmt.Printf("  CPU time of the container from its start to the first result (load changes it far less than the times above): median %d ms, of %d starts\n",
			cpu[len(cpu)/2].Milliseconds(), len(cpu))
		fmt.Printf("  load average while it ran: %s\n\n", loadAverage())
		const goal = 2.5 // seconds from the call to the first tool result
		for _, g := range []struct {
			what   string
			starts []*coldStart
		}{{"cold start, a new client's first tool result (median)", fresh}, {"cold start, a call that finds its server stopped (median)", connected}} {
			took := medianOf(g.starts, (*coldStart).callAt, (*coldStart).resultAt).Seconds()
			fmt.Println(labtest.GoalLine(g.what, "s", took, goal, "<=", 1))
		}
	}
}

// coldNewClient times a new client's first call to name's stopped server.
func coldNewClient(b testing.TB, name, tok string) *coldStart {
	c := &coldStart{call: time.Now()}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "hub-bench", Version: "v0"}, nil).Connect(b.Context(),
		&mcp.StreamableClientTransport{Endpoint: theHub.URL + "/services/mcp", HTTPClient: labtest.AuthClient("token " + tok), MaxRetries: -1}, nil)
	if err != nil {
		b.Fatalf("connect through the hub URL to a stopped server: %v", err)
	}
	defer cs.Close()
	c.initialized = time.Now()
	res, err := cs.CallTool(b.Context(), &mcp.CallToolParams{Name: "list_notebooks"})
	c.result = time.Now()
	if err != nil || res.IsError {
		b.Fatalf("list_notebooks: %v %s", err, labtest.ResultText(res))
	}
	if err := c.read(theHub, name); err != nil {
		b.Fatal(err)
	}
	return c
}

// read fills in the moments of name's start from Docker's events, the
// container's log and the hub's log, waiting a little for log lines still
// on their way.
func (c *coldStart) read(h *hubProcess, name string) error {
	container := h.Prefix + "-" + name
	var missing string
	err := poll(10*time.Second, func() (bool, error) {
		missing = c.readOnce(h, name, container)
		return missing == "", nil
	})
	if err != nil {
		return fmt.Errorf("%s's start: no %s in the logs: %w", name, missing, err)
	}
	c.cpu, err = containerCPU(container)
	return err
}

// containerCPU is the CPU time used so far by the processes of a running
// container, from its cgroup (v2: cpu.stat, v1: cpuacct.usage).
func containerCPU(container string) (time.Duration, error) {
	out, err := exec.Command("docker", "exec", container, "sh", "-c",
		"cat /sys/fs/cgroup/cpu.stat 2>/dev/null || cat /sys/fs/cgroup/cpuacct/cpuacct.usage").Output()
	if err != nil {
		return 0, fmt.Errorf("read %s's CPU time: %v", container, err)
	}
	for _, line := range lines(out) {
		if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
			us, err := strconv.ParseInt(v, 10, 64)
			return time.Duration(us) * time.Microsecond, err
		}
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s's CPU time: %q", container, out)
	}
	return time.Duration(ns), nil
}

// readOnce reads what is there; it names the first moment still missing.
func (c *coldStart) readOnce(h *hubProcess, name, container string) (missing string) {
	since := strconv.FormatFloat(float64(c.call.UnixNano())/1e9, 'f', 3, 64)
	events, _ := exec.Command("docker", "events", "--since", since, "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
		"--filter", "container="+container, "--format", "{{.TimeNano}} {{.Action}}").Output()
	for _, line := range lines(events) {
		nanos, action, _ := strings.Cut(line, " ")
		n, err := strconv.ParseInt(nanos, 10, 64)
		if err != nil {
			continue
		}
		switch action {
		case "create":
			c.created = time.Unix(0, n)
		case "start":
			c.started = time.Unix(0, n)
		}
	}
	logs, _ := exec.Command("docker", "logs", "--timestamps", container).CombinedOutput()
	c.labLog, c.labListening, c.labAnswered, c.sidecar = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	for _, line := range lines(logs) {
		stamp, text, _ := strings.Cut(line, " ")
		at, err := time.Parse(time.RFC3339Nano, stamp)
		if err != nil {
			continue
		}
		switch {
		case c.labLog.IsZero():
			c.labLog = at
		case c.labListening.IsZero() && strings.Contains(text, "is running at"):
			c.labListening = at
		case c.labAnswered.IsZero() && strings.Contains(text, " GET /user/"+name+"/api ("):
			c.labAnswered = at
		case c.sidecar.IsZero() && strings.Contains(text, `"component":"jupyter-mcp-sidecar"`):
			c.sidecar = at
		}
	}
	c.hubReady, c.routed, c.hubAnswered, c.hubMissed = time.Time{}, time.Time{}, time.Time{}, 0
	for _, line := range lines(h.Log()) {
		at, text, ok := hubLogLine(line)
		if !ok || at.Before(c.call) {
			continue
		}
		switch {
		case strings.Contains(text, "Failed to connect to ") && strings.Contains(text, "/user/"+name+"/api"):
			c.hubMissed++
		case c.hubReady.IsZero() && strings.Contains(text, "User "+name+" took "):
			c.hubReady = at
		case c.routed.IsZero() && strings.Contains(text, "Route added /user/"+name+" "):
			c.routed = at
		case c.hubAnswered.IsZero() && (strings.Contains(text, "201 POST /hub/api/users/"+name+"/server ") ||
			strings.Contains(text, "200 GET /hub/api/users/"+name+"/server/progress ")):
			c.hubAnswered = at
		}
	}
	for _, m := range []struct {
		what string
		at   time.Time
	}{{"container created", c.created}, {"container started", c.started}, {"lab log line", c.labLog},
		{`lab "is running at"`, c.labListening}, {"lab's answer to GET <server>/api", c.labAnswered}, {"hub's ready line", c.hubReady}, {"proxy's route", c.routed},
		{"hub's answer to the start", c.hubAnswered}, {"sidecar log line", c.sidecar}} {
		if m.at.IsZero() {
			return m.what
		}
	}
	return ""
}

func lines(b []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// hubLogLine reads the time of a line of the hub's log: JupyterHub's own
// ("[I <date> <hh:mm:ss.mmm> JupyterHub ...", local time) or its
// proxy's ("<date>T<hh:mm:ss.mmm>Z [ConfigProxy] ...", UTC).
func hubLogLine(line string) (time.Time, string, bool) {
	if rest, ok := strings.CutPrefix(line, "["); ok && len(rest) > 26 {
		at, err := time.ParseInLocation("2006-01-02 15:04:05.000", rest[2:25], time.Local)
		return at, rest[25:], err == nil
	}
	stamp, text, _ := strings.Cut(line, " ")
	at, err := time.Parse(time.RFC3339Nano, stamp)
	return at, text, err == nil
}

// printPhases prints each phase's median over starts, and the total.
func printPhases(starts []*coldStart, phases []phase) {
	for _, p := range phases {
		fmt.Printf("  %-78s %6d ms\n", p.what, medianOf(starts, p.from, p.to).Milliseconds())
	}
	var slowest time.Duration
	for _, c := range starts {
		slowest = max(slowest, c.result.Sub(c.call))
	}
	fmt.Printf("  %-78s %6d ms (slowest %d ms)\n", "call → first tool result",
		medianOf(starts, (*coldStart).callAt, (*coldStart).resultAt).Milliseconds(), slowest.Milliseconds())
}

// medianOf is the median over starts of the time from one moment to another.
func medianOf(starts []*coldStart, from, to func(*coldStart) time.Time) time.Duration {
	d := make([]time.Duration, len(starts))
	for i, c := range starts {
		d[i] = to(c).Sub(from(c))
	}
	slices.Sort(d)
	return d[len(d)/2]
}

// The hub's first check whether a started server answers finds it
// answering: the spawner's start returns only once the server answers,
// asked every 50 ms, instead of leaving it to the hub's checks, which
// back off at random up to seconds apart while the lab is already up.
func TestHubFindsStartedServerAnswering(t *testing.T) {
	name := "prompt" + randomHex(3)
	if err := theHub.createUser(name); err != nil {
		t.Fatal(err)
	}
	tok, err := theHub.userToken(name)
	if err != nil {
		t.Fatal(err)
	}
	c := coldNewClient(t, name, tok)
	if c.hubMissed != 0 {
		t.Fatalf("the hub checked %d times before %s's server answered; want its first check to find it answering", c.hubMissed, name)
	}
	t.Logf("lab listening %s after the call, taken into use by the hub %s later",
		c.labListening.Sub(c.call).Round(time.Millisecond), c.hubReady.Sub(c.labListening).Round(time.Millisecond))
}

// loadAverage is the host's load average over 1, 5 and 15 minutes, which
// the wall times above grow with.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(data))[:3], " ")
}
