package hub

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/notebook"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

// TestHubSoak is `make hub-soak` (HUB_SOAK_USERS=50, HUB_SOAK_DURATION=10m)
// and, in its short form (10 users, 2 minutes), one of the hub's tests.
// Each user is an agent working through <hub>/services/mcp in notebooks of
// its own: inserting, editing, deleting and running cells, with think
// times between calls and breaks, some long enough for the culler to stop
// its server, which its next call starts again. The hub holds fewer
// servers than there are users, each with memory and CPU limits; its MCP
// router is restarted a quarter of the way in, the hub itself halfway;
// agents honour Retry-After. At the end every acknowledged edit must be in its
// owner's notebook on its owner's volume and in nobody else's, nothing
// deleted may be back; the figures are printed either way.
func TestHubSoak(t *testing.T) {
	set, err := soakSettingsFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	h, err := startHub(filepath.Join(testDir, "soak"), router,
		"HUB_MEM_LIMIT="+soakMemLimit, "HUB_CPU_LIMIT="+soakCPULimit,
		fmt.Sprintf("HUB_ACTIVE_SERVER_LIMIT=%d", set.servers),
		fmt.Sprintf("HUB_IDLE_TIMEOUT=%d", int(set.idle.Seconds())),
		fmt.Sprintf("HUB_CULL_EVERY=%d", int(set.report.Seconds())),
		fmt.Sprintf("HUB_ACTIVITY_INTERVAL=%d", int(set.report.Seconds())))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	t.Cleanup(func() {
		if t.Failed() {
			keepLogs(t, h)
		}
	})
	s := &hubSoak{t: t, h: h, set: set, calls: map[string]*toolTally{}, failures: map[string]int{}, unknown: map[string]int{}, refusals: map[string]int{}}
	s.baseline = hostMemoryUsed() // the hub, its proxy and router, no server yet
	for i := range set.users {
		name := fmt.Sprintf("agent%03d", i+1)
		if err := h.createUser(name); err != nil {
			t.Fatal(err)
		}
		token, err := h.userToken(name)
		if err != nil {
			t.Fatal(err)
		}
		s.agents = append(s.agents, s.newAgent(name, token, i))
	}
	s.run()
}

// keepLogs copies the hub's log and the router's audit trail where they
// outlive the test's directory, and says where.
func keepLogs(t *testing.T, h *hubProcess) {
	dir, err := os.MkdirTemp("", "hub-soak-logs-")
	if err != nil {
		t.Log(err)
		return
	}
	_ = os.WriteFile(filepath.Join(dir, "hub.log"), h.Log(), 0o600)
	_ = os.WriteFile(filepath.Join(dir, "mcp-audit.log"), h.Audit(), 0o600)
	t.Logf("the soak hub's log and the router's audit trail are in %s", dir)
}

// Per-user limits of the soak's hub: the test's cells need little of
// either; the hub's start and the lab's need one CPU to start within
// seconds on two cores.
const (
	soakMemLimit = "1G"
	soakCPULimit = "1"
)

// soakSettings is the size of a run, and what follows from it.
type soakSettings struct {
	users    int
	duration time.Duration // of the load, from the first agent's arrival window on
	// idle is the culler's timeout: short enough that breaks get servers
	// culled several times a run. report is the culler's period and how
	// often servers report activity.
	idle, report time.Duration
	// servers is the hub's active-server limit: fewer than the users, so
	// that starts are refused at capacity until the culler frees a place.
	servers int
	// arrive is the window the agents arrive in. The ranges: think, an
	// agent's pauses between calls; burst, how long it works before a
	// break (firstBurst is shorter: its first break, a long one, and the
	// cull it brings come early in the run); its breaks.
	arrive                   time.Duration
	think, firstBurst, burst [2]time.Duration
	shortBreak, longBreak    [2]time.Duration
}

// soakSettingsFromEnv reads HUB_SOAK_USERS (10) and HUB_SOAK_DURATION (2m).
func soakSettingsFromEnv() (soakSettings, error) {
	s := soakSettings{users: 10, duration: 2 * time.Minute}
	if v := os.Getenv("HUB_SOAK_USERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 2 || n > 999 {
			return s, fmt.Errorf("HUB_SOAK_USERS=%q: expected a number of users from 2 to 999", v)
		}
		s.users = n
	}
	if v := os.Getenv("HUB_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 90*time.Second {
			return s, fmt.Errorf("HUB_SOAK_DURATION=%q: expected a duration of 90s or more (the two restarts take about a minute), e.g. 10m", v)
		}
		s.duration = d
	}
	s.idle = min(max(s.duration/8, 15*time.Second), time.Minute)
	s.report = max(s.idle/5, 2*time.Second)
	s.servers = max(1, s.users*4/5)
	s.arrive = s.duration / 12
	s.think = [2]time.Duration{time.Second, 5 * time.Second}
	s.shortBreak = [2]time.Duration{2 * time.Second, 8 * time.Second}
	s.firstBurst = [2]time.Duration{s.idle / 3, s.idle / 2}
	s.burst = [2]time.Duration{s.idle, 2 * s.idle}
	// A long break outlasts the timeout, the culler's period and the
	// activity report's lag: the server is culled before the agent is back.
	s.longBreak = [2]time.Duration{s.idle + 3*s.report, 2*s.idle + 3*s.report}
	return s, nil
}

// The notebooks each agent works in, in its own server.
var soakNotebooks = []string{"work-1.ipynb", "work-2.ipynb"}

// callTimeout bounds one tool call, waits for capacity included (a
// request waiting to be sent again ends as not run).
const callTimeout = 5 * time.Minute

type hubSoak struct {
	t      *testing.T
	h      *hubProcess
	set    soakSettings
	agents []*soakAgent
	load   context.Context // ends when the agents stop making calls
	start  time.Time       // of the load

	baseline float64 // MiB of host memory in use before any server

	mu       sync.Mutex
	calls    map[string]*toolTally
	failures map[string]int // "tool: message" of calls the tool failed
	unknown  map[string]int // "tool: error" of calls without an answer
	refusals map[string]int // answers that ran nothing, by kind
	waited   time.Duration  // waiting as Retry-After asked
	slowest  []slowCall
	// handedBack counts runs answered with their execution handle while
	// the router stopped (they go on); gaveUp the calls refused, and sent
	// again, for all of callTimeout.
	handedBack, gaveUp atomic.Int64
	lastOK             time.Time
}

// slowCall is a call that took long, and when it ended (from the start).
type slowCall struct {
	tool        string
	took, ended time.Duration
	outcome     outcome
}

// toolTally is one tool's calls: how long those that succeeded took
// (waits for Retry-After left out), and how many did not.
type toolTally struct {
	took            []time.Duration
	failed, unknown int
}

func (s *hubSoak) tally(tool string) *toolTally {
	t := s.calls[tool]
	if t == nil {
		t = &toolTally{}
		s.calls[tool] = t
	}
	return t
}

// agentName is how an agent's name appears in the hub's, the culler's and
// the router's messages: masked, alike messages add up.
var agentName = regexp.MustCompile(`agent\d{3}`)

func (s *hubSoak) record(tool string, took time.Duration, o outcome, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tally(tool)
	msg = agentName.ReplaceAllString(msg, "<user>")
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	if took > 10*time.Second {
		// The slowest calls, to tell what held the agents up.
		s.slowest = append(s.slowest, slowCall{tool: tool, took: took, ended: time.Since(s.start), outcome: o})
		slices.SortFunc(s.slowest, func(a, b slowCall) int { return int(b.took - a.took) })
		s.slowest = s.slowest[:min(len(s.slowest), 5)]
	}
	switch o {
	case done:
		t.took = append(t.took, took)
		s.lastOK = time.Now()
	case failed:
		t.failed++
		s.failures[tool+": "+msg]++
	case unknown:
		t.unknown++
		s.unknown[tool+": "+msg]++
	}
}

func (s *hubSoak) refused(kind string, wait time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refusals[agentName.ReplaceAllString(kind, "<user>")]++
	s.waited += wait
}

// run starts the agents, the sampler and the restarts, waits for the end
// of the load, then checks the volumes, prints the figures and fails the
// test on what went wrong.
func (s *hubSoak) run() {
	load, stop := context.WithTimeout(s.t.Context(), s.set.duration)
	defer stop()
	s.load, s.start = load, time.Now()
	f := soakFigures{samples: &hostSampler{h: s.h, router: map[int]*routerProc{}}}
	sampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() { defer close(sampled); f.samples.run(sampling) }()
	restarted := make(chan struct{})
	go func() { defer close(restarted); f.restarts = s.restart(s.start) }()

	var wg sync.WaitGroup
	for _, a := range s.agents {
		wg.Go(a.run)
	}
	wg.Wait()
	f.loadEnded = time.Since(s.start)
	<-restarted

	// The servers still running are idle now, until the culler stops
	// them: the memory in use before and after, against their number, is
	// an idle user's.
	f.idleUsed, f.idleServers, f.containers = hostMemoryUsed(), runningServers(s.h), containersMiB(s.h)
	close(sampling)
	<-sampled

	f.verdict = s.verify()
	hubLog := s.h.Log()
	starts := map[string]int{}
	for _, m := range serverStarted.FindAllSubmatch(hubLog, -1) {
		starts[string(m[1])]++
	}
	for _, n := range starts {
		f.starts += n
		if n > 1 {
			f.startedAgain++
		}
	}
	f.culls = len(serverCulled.FindAll(hubLog, -1))
	f.culledAll = poll(s.set.idle+3*s.set.report+time.Minute, func() (bool, error) { return runningServers(s.h) == 0, nil })
	f.noServers = hostMemoryUsed()

	s.mu.Lock()
	defer s.mu.Unlock()
	s.print(f)
	if problems := s.problems(f); len(problems) > 0 {
		s.t.Fatal(strings.Join(problems, "\n"))
	}
}

// soakFigures is what run measured besides the calls.
type soakFigures struct {
	samples              *hostSampler
	restarts             restartTimes
	loadEnded            time.Duration
	idleUsed, noServers  float64 // MiB of host memory in use
	containers           float64 // MiB the idle servers' containers use
	idleServers          int
	verdict              soakVerdict
	starts, startedAgain int
	culls                int
	culledAll            error
}

// print prints the figures (s.mu held).
func (s *hubSoak) print(f soakFigures) {
	p := func(format string, args ...any) { fmt.Printf(format+"\n", args...) }
	v := f.verdict
	p("\nhub soak: %d users for %s through <hub>/services/mcp (load ended %s after it began)", s.set.users, s.set.duration, f.loadEnded.Round(time.Second))
	p("  hub: %s and %s CPU per server, at most %d servers at once; idle timeout %s (culler every %s); think times %s–%s",
		soakMemLimit, soakCPULimit, s.set.servers, s.set.idle, s.set.report, s.set.think[0], s.set.think[1])
	p("  %-15s %6s %7s %8s %8s %8s", "tool", "ok", "failed", "unknown", "p50", "p95")
	var calls int
	for _, tool := range slices.Sorted(maps.Keys(s.calls)) {
		c := s.calls[tool]
		slices.Sort(c.took)
		calls += len(c.took) + c.failed + c.unknown
		p("  %-15s %6d %7d %8d %8s %8s", tool, len(c.took), c.failed, c.unknown, pct(c.took, 0.5), pct(c.took, 0.95))
	}
	p("  %.1f calls/s; p50 and p95 of the calls that succeeded, waits for Retry-After left out", float64(calls)/f.loadEnded.Seconds())
	for _, m := range slices.Sorted(maps.Keys(s.failures)) {
		p("    failed %4d × %s", s.failures[m], m)
	}
	for _, m := range slices.Sorted(maps.Keys(s.unknown)) {
		p("    no answer %4d × %s", s.unknown[m], m)
	}
	p("  acknowledged edits %d (%d cells inserted, %d edits, %d deletions): lost %d, deleted and back %d, in another user's notebook %d, duplicated %d",
		v.inserted+v.edited+v.deleted, v.inserted, v.edited, v.deleted, v.lost, v.back, v.foreign, v.dup)
	p("  acknowledged edits per user: fewest %d (%s), most %d; %d runs handed back with their handles while the router stopped",
		v.fewest, v.fewestUser, v.most, s.handedBack.Load())
	for _, c := range s.slowest {
		p("  slow: %s took %s, ended %s into the load (%s)", c.tool, c.took.Round(100*time.Millisecond), c.ended.Round(time.Second), c.outcome)
	}
	p("  servers: %d starts (%d users' started again), %d culls", f.starts, f.startedAgain, f.culls)
	var atCapacity int
	for kind, n := range s.refusals {
		if strings.HasPrefix(kind, "at capacity") {
			atCapacity += n
		}
	}
	p("  refused before running, sent again after Retry-After: %d at-capacity answers; in all %s waited; %d calls given up after %s of refusals",
		atCapacity, s.waited.Round(time.Second), s.gaveUp.Load(), callTimeout)
	for _, kind := range slices.Sorted(maps.Keys(s.refusals)) {
		p("    %5d × %s", s.refusals[kind], kind)
	}
	p("  router restart (SIGTERM, the hub starts it again): back after %s; hub restart (SIGTERM, started again): back after %s",
		f.restarts.router.Round(100*time.Millisecond), f.restarts.hub.Round(100*time.Millisecond))
	p("  host memory in use (MemTotal - MemAvailable): %.0f MiB before any server; peak %.0f MiB, with %d servers running (%.0f MiB each above no server)",
		s.baseline, f.samples.peak, f.samples.peakServers, perServer(f.samples.peak-f.noServers, f.samples.peakServers))
	p("  per idle user: %.0f MiB (%.0f MiB with the %d servers idle at the end, %.0f MiB once culled); their containers %.0f MiB each (docker stats)",
		perServer(f.idleUsed-f.noServers, f.idleServers), f.idleUsed, f.idleServers, f.noServers, perServer(f.containers, f.idleServers))
	cpu, rss := f.samples.routerFigures()
	p("  router: CPU %.1f s (%.1f%% of one core over the run), resident memory peak %.1f MiB, %d processes",
		cpu.Seconds(), 100*cpu.Seconds()/f.loadEnded.Seconds(), rss, len(f.samples.router))
}

// problems is what went wrong (s.mu held): anything lost, back or in the
// wrong place; any call that failed or got no answer; a run that did not
// do what the soak is for (culls and starts again, work after the
// restarts); a token in the log.
func (s *hubSoak) problems(f soakFigures) []string {
	var problems []string
	v := f.verdict
	if v.lost+v.back+v.foreign+v.dup > 0 {
		problems = append(problems, fmt.Sprintf("%d lost, %d deleted and back, %d in another user's notebook, %d duplicated", v.lost, v.back, v.foreign, v.dup))
	}
	problems = append(problems, v.details...)
	var failed, unknown int
	for _, c := range s.calls {
		failed, unknown = failed+c.failed, unknown+c.unknown
	}
	if failed+unknown > 0 {
		problems = append(problems, fmt.Sprintf("%d calls failed, %d got no answer", failed, unknown))
	}
	if f.culledAll != nil {
		problems = append(problems, fmt.Sprintf("servers still run %s after the load: the culler did not stop them (%v)", s.set.idle+3*s.set.report+time.Minute, f.culledAll))
	}
	if f.culls == 0 || f.startedAgain == 0 {
		problems = append(problems, fmt.Sprintf("%d culls, %d users' servers started again: the soak did not cull and start servers again", f.culls, f.startedAgain))
	}
	if f.restarts.err != nil {
		problems = append(problems, f.restarts.err.Error())
	} else if !s.lastOK.After(f.restarts.over) {
		problems = append(problems, "no call succeeded after the restarts")
	}
	hubLog := s.h.Log()
	for _, a := range s.agents {
		if bytes.Contains(hubLog, []byte(a.token)) {
			problems = append(problems, "the soak hub's log holds "+a.name+"'s token")
		}
	}
	return problems
}

var (
	serverStarted = regexp.MustCompile(`User (agent\d+) took [0-9.]+ seconds to start`)
	serverCulled  = regexp.MustCompile(`Culling server agent\d+`)
)

func pct(sorted []time.Duration, q float64) string {
	if len(sorted) == 0 {
		return "-"
	}
	return sorted[int(q*float64(len(sorted)-1))].Round(time.Millisecond).String()
}

func perServer(mib float64, servers int) float64 {
	if servers == 0 {
		return 0
	}
	return mib / float64(servers)
}

// pause waits d, or until ctx ends (false): an agent's think time or
// break, not a synchronisation.
func pause(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// restartTimes is how long the restarts took, from the signal to the new
// router answering, and to the hub's API answering again.
type restartTimes struct {
	router, hub time.Duration
	over        time.Time // when the last one was over
	err         error
}

// restart restarts the router a quarter of the way into the load (SIGTERM
// to the router alone, as a crash or an upgrade would; the hub starts it
// again), and the hub halfway (SIGTERM: it stops its services and proxy
// and leaves the servers running; then it is started again). The router
// goes first: while it is away the culler goes on culling. Both must
// happen while the load goes on, with time left for work after them.
func (s *hubSoak) restart(start time.Time) (r restartTimes) {
	ctx := s.t.Context()
	if !pause(ctx, time.Until(start.Add(s.set.duration/4))) {
		return restartTimes{err: ctx.Err()}
	}
	old := routerPIDs(s.h)
	if len(old) != 1 {
		return restartTimes{err: fmt.Errorf("want one router process of the soak's hub, found %v", old)}
	}
	t0 := time.Now()
	if err := syscall.Kill(old[0], syscall.SIGTERM); err != nil {
		return restartTimes{err: fmt.Errorf("stop the router: %w", err)}
	}
	if err := s.h.routerBack(old[0]); err != nil {
		return restartTimes{err: err}
	}
	r.router = time.Since(t0)

	if !pause(ctx, time.Until(start.Add(s.set.duration/2))) {
		return restartTimes{err: ctx.Err()}
	}
	if s.load.Err() != nil {
		return restartTimes{err: errors.New("the load ended before the hub's restart: make HUB_SOAK_DURATION longer")}
	}
	t1 := time.Now()
	none := func() error { return nil }
	if err := s.h.restart(none, none); err != nil {
		return restartTimes{err: fmt.Errorf("restart the hub: %w", err)}
	}
	r.hub, r.over = time.Since(t1), time.Now()
	if s.load.Err() != nil {
		r.err = errors.New("the hub came back after the load ended: make HUB_SOAK_DURATION longer")
	}
	return r
}

// ---- the agents ----

// soakAgent is one user's agent: one MCP client through the hub URL, and
// what it knows each of its cells holds.
type soakAgent struct {
	s           *hubSoak
	name, token string
	rng         *rand.Rand
	transport   *patientTransport
	cs          *mcp.ClientSession
	n           int // cells inserted so far: the next marker
	cells       map[string]map[string]*expectCell
	deleted     map[string]map[string]string // notebook → cell id → its marker
	// acked counts the acknowledged edits: inserted, edited, deleted.
	inserted, edited, removed int
}

// expectCell is what a cell of the agent's may hold: its source after the
// last acknowledged edit, or any of the sources since when a later call
// got no answer (it may or may not have happened); mayBeGone after a
// deletion without an answer.
type expectCell struct {
	marker    string
	sources   []string
	mayBeGone bool
}

func (s *hubSoak) newAgent(name, token string, i int) *soakAgent {
	a := &soakAgent{s: s, name: name, token: token, rng: rand.New(rand.NewPCG(uint64(i), 1)),
		cells: map[string]map[string]*expectCell{}, deleted: map[string]map[string]string{}}
	a.transport = &patientTransport{base: labtest.AuthClient("token " + token).Transport, soak: s}
	for _, nb := range soakNotebooks {
		a.cells[nb], a.deleted[nb] = map[string]*expectCell{}, map[string]string{}
	}
	return a
}

func (a *soakAgent) between(r [2]time.Duration) time.Duration {
	return r[0] + time.Duration(a.rng.Int64N(int64(r[1]-r[0])+1))
}

// run is the agent's day: it arrives, creates its notebooks, then works in
// bursts, one notebook a burst, with a break after each: a short one, or a
// long one that gets its server culled; the first break is long, so that
// every agent's server is culled and started again at least once.
func (a *soakAgent) run() {
	set := a.s.set
	a.transport.load = a.s.load
	if !pause(a.s.load, a.between([2]time.Duration{0, set.arrive})) {
		return
	}
	for _, nb := range soakNotebooks {
		for a.s.load.Err() == nil {
			_, o, msg := a.call("create_notebook", map[string]any{"path": nb})
			if o == done || (o == failed && strings.Contains(msg, "exists")) {
				break
			}
			pause(a.s.load, time.Second)
		}
	}
	for burst := 0; a.s.load.Err() == nil; burst++ {
		nb := soakNotebooks[burst%len(soakNotebooks)]
		length := set.burst
		if burst == 0 {
			length = set.firstBurst
		}
		for end := time.Now().Add(a.between(length)); time.Now().Before(end); {
			if !pause(a.s.load, a.between(set.think)) {
				return
			}
			a.step(nb)
		}
		brk := set.shortBreak
		if burst == 0 || a.rng.IntN(2) == 0 {
			brk = set.longBreak
		}
		if !pause(a.s.load, a.between(brk)) {
			return
		}
	}
}

// live is the agent's cells in nb known to be there, in a stable order.
func (a *soakAgent) live(nb string) []string {
	var ids []string
	for id, c := range a.cells[nb] {
		if !c.mayBeGone {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// step makes one call: insert a cell (most often), edit, delete or run
// one of its own, or read the notebook.
func (a *soakAgent) step(nb string) {
	live := a.live(nb)
	pick := func() string { return live[a.rng.IntN(len(live))] }
	switch r := a.rng.Float64(); {
	case len(live) < 2 || r < 0.4:
		a.n++
		marker := fmt.Sprintf("@%s#%d@", a.name, a.n)
		src := fmt.Sprintf("# %s\nv%d = %d", marker, a.n, a.n)
		out, o, _ := a.call("insert_cell", map[string]any{"path": nb, "source": src, "index": -1})
		if o != done {
			return
		}
		var ins struct {
			CellID string `json:"cell_id"`
		}
		if err := json.Unmarshal(out, &ins); err != nil || ins.CellID == "" {
			a.s.t.Errorf("%s: insert_cell answered %s", a.name, out)
			return
		}
		a.cells[nb][ins.CellID] = &expectCell{marker: marker, sources: []string{src}}
		a.inserted++
	case r < 0.6:
		id := pick()
		c := a.cells[nb][id]
		a.n++ // a fresh number: the edit is told apart from every other
		src := fmt.Sprintf("# %s edited\nv = %d", c.marker, a.n)
		switch _, o, _ := a.call("edit_cell", map[string]any{"path": nb, "cell_id": id, "source": src}); o {
		case done:
			c.sources = []string{src}
			a.edited++
		case unknown:
			c.sources = append(c.sources, src)
		}
	case r < 0.75:
		id := pick()
		switch _, o, _ := a.call("delete_cells", map[string]any{"path": nb, "cell_ids": []string{id}}); o {
		case done:
			a.deleted[nb][id] = a.cells[nb][id].marker
			delete(a.cells[nb], id)
			a.removed++
		case unknown:
			a.cells[nb][id].mayBeGone = true
		}
	case r < 0.9:
		out, o, _ := a.call("execute_cell", map[string]any{"path": nb, "cell_id": pick(), "timeout": 60})
		var run struct {
			Status      string `json:"status"`
			ExecutionID string `json:"execution_id"`
		}
		switch {
		case o != done:
		case json.Unmarshal(out, &run) != nil:
			a.s.t.Errorf("%s: execute_cell answered %s", a.name, out)
		case (run.Status == "queued" || run.Status == "running") && run.ExecutionID != "":
			// Handed back while the router stopped: the run goes on.
			a.s.handedBack.Add(1)
		case run.Status != "ok":
			a.s.record("execute_cell", 0, failed, "the run's status is "+run.Status+": "+string(out))
		}
	default:
		a.call("read_notebook", map[string]any{"path": nb, "limit": 20})
	}
}

// outcome is what became of a call: done (answered), failed (the tool's
// error, which says it changed nothing), unknown (no answer: it may or
// may not have happened) or notRun (the load ended while it waited to be
// sent again).
type outcome int

const (
	done outcome = iota
	failed
	unknown
	notRun
)

func (o outcome) String() string {
	return [...]string{"done", "failed", "no answer", "not run"}[o]
}

// call makes one tool call, opening the agent's MCP session first if it
// has none, and records it; after a call without an answer the session is
// opened anew. It returns the structured result of a call that succeeded,
// and the message of one that did not.
func (a *soakAgent) call(tool string, args map[string]any) (json.RawMessage, outcome, string) {
	if a.cs == nil && !a.connect() {
		return nil, notRun, ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	waited := a.transport.waited.Load()
	start := time.Now()
	res, err := a.cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	took := time.Since(start) - time.Duration(a.transport.waited.Load()-waited)
	switch {
	case errors.Is(err, errNotRun):
		if a.s.load.Err() == nil {
			a.s.gaveUp.Add(1) // refused for all of callTimeout
		}
		return nil, notRun, ""
	case err != nil:
		a.s.record(tool, took, unknown, err.Error())
		a.cs.Close()
		a.cs = nil
		return nil, unknown, err.Error()
	case res.IsError:
		msg := labtest.ResultText(res)
		if !(tool == "create_notebook" && strings.Contains(msg, "exists")) {
			a.s.record(tool, took, failed, msg)
		}
		return nil, failed, msg
	}
	a.s.record(tool, took, done, "")
	data, _ := json.Marshal(res.StructuredContent)
	return data, done, ""
}

// connect opens the agent's MCP session through the hub URL, trying again
// a second after a failure, until the load ends.
func (a *soakAgent) connect() bool {
	for a.s.load.Err() == nil {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		c := mcp.NewClient(&mcp.Implementation{Name: "hub-soak", Version: "v0"}, nil)
		cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{
			Endpoint: a.s.h.URL + "/services/mcp", HTTPClient: &http.Client{Transport: a.transport}, MaxRetries: -1}, nil)
		cancel()
		if err == nil {
			a.cs = cs
			return true
		}
		if errors.Is(err, errNotRun) {
			return false
		}
		a.s.record("(connect)", 0, unknown, err.Error())
		pause(a.s.load, time.Second)
	}
	return false
}

// patientTransport sends an agent's requests, and sends again, after the
// Retry-After of the answer (a second without one), those whose answer
// says they ran nothing (see refusal). Any other answer or failure goes to
// the MCP client as it is. Once the load is over it waits no more: the
// request ends with errNotRun.
type patientTransport struct {
	base   http.RoundTripper
	soak   *hubSoak
	load   context.Context
	waited atomic.Int64 // nanoseconds spent waiting, in all
}

var errNotRun = errors.New("not sent again: the load is over")

var digits = regexp.MustCompile(`\d+`)

func (p *patientTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	for {
		resp, err := p.base.RoundTrip(req)
		kind, wait := refusal(resp, err)
		if kind == "" || req.GetBody == nil {
			return resp, err
		}
		if resp != nil {
			resp.Body.Close()
		}
		p.soak.refused(kind, wait)
		select {
		case <-time.After(wait):
		case <-p.load.Done():
			return nil, errNotRun
		case <-req.Context().Done():
			return nil, fmt.Errorf("%w (%w)", errNotRun, req.Context().Err())
		}
		p.waited.Add(int64(wait))
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		req = req.Clone(req.Context())
		req.Body = body
	}
}

// refusal tells whether an answer (resp, or err if there is none) says
// that the request ran nothing, and so may be sent again: what kind of
// refusal it is ("" if it is none) and how long the answer asks to wait
// (Retry-After; a second without one). The body of an error answer is
// read, and put back for the caller.
//
// Refusals: the hub's connection refused (it restarts); an error answer
// that is not JSON-RPC, so from neither the router nor a sidecar: the
// hub's proxy answering for a router that is not there, or the hub itself
// while it starts, before its proxy has the router's route; and the
// router's own 429 and 5xx answers, all given before it forwards, except
// two that may come after: a call cut off while the router stops, and a
// server that could not be reached.
func refusal(resp *http.Response, err error) (kind string, wait time.Duration) {
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return "connection refused (the hub is down)", time.Second
		}
		return "", 0
	}
	if resp.StatusCode < 400 {
		return "", 0
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(data))
	wait = time.Second
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs >= 0 {
		wait = time.Duration(secs) * time.Second
	}
	msg := rpcError(string(data))
	switch {
	case msg == "":
		return fmt.Sprintf("%d from the hub or its proxy, no router behind the URL", resp.StatusCode), wait
	case resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode < 500,
		strings.Contains(msg, "cut off"), strings.HasPrefix(msg, "cannot reach your server"):
		return "", 0
	case strings.Contains(msg, "JupyterHub is at capacity"):
		// The hub's words are in parentheses: which of its limits.
		_, why, _ := strings.Cut(msg, " (")
		why, _, _ = strings.Cut(why, ")")
		return "at capacity (the hub): " + digits.ReplaceAllString(why, "N"), wait
	case strings.Contains(msg, "MCP service is at capacity"), strings.Contains(msg, "requests in flight"):
		return "at capacity (the router)", wait
	}
	return fmt.Sprintf("%d from the router: %s", resp.StatusCode, msg), wait
}

// ---- what the volumes hold ----

// soakVerdict is what the volumes hold against what the agents were told.
type soakVerdict struct {
	inserted, edited, deleted int
	lost, back, foreign, dup  int
	fewest, most              int
	fewestUser                string
	details                   []string // the first few problems, in words
}

func (v *soakVerdict) problem(format string, args ...any) {
	if len(v.details) < 20 {
		v.details = append(v.details, fmt.Sprintf(format, args...))
	}
}

// verify reads every user's notebooks from the user's volume until they
// hold what the agent was told (a running server writes an edit to its
// file within about a second), for a minute at most, and judges them.
func (s *hubSoak) verify() soakVerdict {
	var v soakVerdict
	deadline := time.Now().Add(time.Minute)
	for {
		files, err := volumeNotebooks(s.h)
		if err != nil {
			s.t.Fatal(err)
		}
		v = s.judge(files)
		if v.lost+v.back == 0 || time.Now().After(deadline) {
			return v
		}
		time.Sleep(2 * time.Second) // polling the volumes, with a deadline
	}
}

// judge holds files (user → notebook path → notebook) against the agents:
// every acknowledged cell there with its last acknowledged source (lost if
// not), no deleted cell, by id or marker (back), no other user's marker
// (foreign), no marker twice (dup).
func (s *hubSoak) judge(files map[string]map[string]*notebook.Notebook) soakVerdict {
	v := soakVerdict{fewest: -1}
	for _, a := range s.agents {
		acked := a.inserted + a.edited + a.removed
		v.inserted, v.edited, v.deleted = v.inserted+a.inserted, v.edited+a.edited, v.deleted+a.removed
		v.most = max(v.most, acked)
		if v.fewest < 0 || acked < v.fewest {
			v.fewest, v.fewestUser = acked, a.name
		}
		for _, nb := range soakNotebooks {
			byID := map[string]string{}
			markers := map[string]int{}
			if f := files[a.name][nb]; f != nil {
				for _, c := range f.Cells {
					byID[c.ID] = c.Source
					if m := cellMarker.FindString(c.Source); m != "" {
						markers[m]++
					}
				}
			}
			for id, want := range a.cells[nb] {
				got, ok := byID[id]
				switch {
				case !ok && !want.mayBeGone:
					v.lost++
					v.problem("%s %s: cell %s (%s) is not on the volume", a.name, nb, id, want.marker)
				case ok && !slices.Contains(want.sources, got):
					v.lost++
					v.problem("%s %s: cell %s is %q on the volume, want one of %q", a.name, nb, id, got, want.sources)
				}
				if markers[want.marker] > 1 {
					v.dup++
					v.problem("%s %s: %d cells hold %s", a.name, nb, markers[want.marker], want.marker)
				}
			}
			for id, marker := range a.deleted[nb] {
				if _, ok := byID[id]; ok || markers[marker] > 0 {
					v.back++
					v.problem("%s %s: deleted cell %s (%s) is back", a.name, nb, id, marker)
				}
			}
		}
	}
	for owner, nbs := range files {
		for p, f := range nbs {
			for _, c := range f.Cells {
				for _, m := range cellMarker.FindAllStringSubmatch(c.Source, -1) {
					if m[1] != owner {
						v.foreign++
						v.problem("%s's %s holds %s's cell %s", owner, p, m[1], m[0])
					}
				}
			}
		}
	}
	return v
}

// cellMarker is the marker of an agent's cell, "@agent007#12@", in its
// first line: whose it is, and which.
var cellMarker = regexp.MustCompile(`@(agent\d{3})#\d+@`)

// volumeNotebooks reads the notebooks on every user volume of the hub
// (user → path → notebook), straight from the volumes: one container of
// the image mounting them all read-only, whichever servers run.
func volumeNotebooks(h *hubProcess) (map[string]map[string]*notebook.Notebook, error) {
	out, err := exec.Command("docker", "volume", "ls", "-q", "--filter", "name=^"+h.Prefix+"-work-").Output()
	if err != nil {
		return nil, fmt.Errorf("docker volume ls: %w", err)
	}
	args := []string{"run", "--rm", "--network", "none", "--user", "0", "--entrypoint", "tar"}
	for _, vol := range strings.Fields(string(out)) {
		args = append(args, "-v", vol+":/volumes/"+strings.TrimPrefix(vol, h.Prefix+"-work-")+":ro")
	}
	args = append(args, imageRepo+":"+imageTag, "-C", "/volumes", "-cf", "-", ".")
	var stderr bytes.Buffer
	cmd := exec.Command("docker", args...)
	cmd.Stderr = &stderr
	data, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("read the volumes: %v: %s", err, stderr.Bytes())
	}
	files := map[string]map[string]*notebook.Notebook{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("the volumes' tar: %w", err)
		}
		user, p, ok := strings.Cut(strings.TrimPrefix(hdr.Name, "./"), "/")
		if !ok || hdr.Typeflag != tar.TypeReg || path.Ext(p) != ".ipynb" || strings.Contains(p, ".ipynb_checkpoints") {
			continue
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		nb, err := notebook.Parse(body)
		if err != nil {
			// A server writing the file as it is read: the next read has it whole.
			continue
		}
		if files[user] == nil {
			files[user] = map[string]*notebook.Notebook{}
		}
		files[user][p] = nb
	}
}

// ---- the host: memory, servers, the router ----

// hostMemoryUsed is the host's memory in use (MemTotal - MemAvailable,
// /proc/meminfo) in MiB.
func hostMemoryUsed() float64 {
	data, _ := os.ReadFile("/proc/meminfo")
	kib := map[string]float64{}
	for _, line := range strings.Split(string(data), "\n") {
		if name, v, ok := strings.Cut(line, ":"); ok {
			kib[name], _ = strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		}
	}
	return (kib["MemTotal"] - kib["MemAvailable"]) / 1024
}

// runningServers is how many users' containers of the hub run.
func runningServers(h *hubProcess) int {
	out, _ := exec.Command("docker", "ps", "-q", "--filter", "name=^"+h.Prefix+"-").Output()
	return len(strings.Fields(string(out)))
}

// containersMiB is the memory the hub's running user containers use in
// all, as docker stats reports it (their cgroups), in MiB.
func containersMiB(h *hubProcess) float64 {
	out, _ := exec.Command("docker", "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}").Output()
	var sum float64
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.HasPrefix(f[0], h.Prefix+"-") {
			continue
		}
		sum += dockerSizeMiB(f[1])
	}
	return sum
}

// dockerSizeMiB reads a size as docker prints it ("123.4MiB", "1.2GiB").
func dockerSizeMiB(s string) float64 {
	for _, u := range []struct {
		suffix string
		mib    float64
	}{{"KiB", 1.0 / 1024}, {"MiB", 1}, {"GiB", 1024}, {"B", 1.0 / (1 << 20)}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return n * u.mib
		}
	}
	return 0
}

// routerBack waits until the router process old is gone and a router
// answers at <hub>/services/mcp again: its own JSON refusal of a request
// without a token, not the proxy's error page.
func (h *hubProcess) routerBack(old int) error {
	err := poll(2*time.Minute, func() (bool, error) {
		if syscall.Kill(old, 0) == nil {
			return false, nil
		}
		resp, err := http.Get(h.URL + "/services/mcp")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json"), nil
	})
	if err != nil {
		return fmt.Errorf("the router did not come back: %w", err)
	}
	return nil
}

// routerPIDs is the hub's MCP router processes: the router binary, on the
// hub's router port.
func routerPIDs(h *hubProcess) []int {
	listen := []byte("--listen=127.0.0.1:" + h.setting("HUB_MCP_PORT") + "\x00")
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if exe == router && bytes.Contains(cmdline, listen) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// hostSampler follows the host's memory in use (its peak, and how many
// servers ran then) and each router process's CPU time and peak resident
// memory, every two seconds.
type hostSampler struct {
	h           *hubProcess
	peak        float64
	peakServers int
	router      map[int]*routerProc
}

type routerProc struct {
	cpu time.Duration
	hwm float64 // VmHWM, MiB
}

func (s *hostSampler) run(stop chan struct{}) {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		if used := hostMemoryUsed(); used > s.peak {
			s.peak, s.peakServers = used, runningServers(s.h)
		}
		for _, pid := range routerPIDs(s.h) {
			p := s.router[pid]
			if p == nil {
				p = &routerProc{}
				s.router[pid] = p
			}
			if cpu := labtest.CPUTime(pid); cpu > 0 {
				p.cpu = cpu
			}
			p.hwm = max(p.hwm, labtest.ProcStatusMB(pid, "VmHWM"))
		}
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// routerFigures is the routers' CPU time in all and their highest peak
// resident memory.
func (s *hostSampler) routerFigures() (cpu time.Duration, hwm float64) {
	for _, p := range s.router {
		cpu += p.cpu
		hwm = max(hwm, p.hwm)
	}
	return cpu, hwm
}

// refusal tells apart the answers that ran nothing, which an agent sends
// again after Retry-After, from those after which nobody knows, and from
// plain answers.
func TestRefusal(t *testing.T) {
	rpc := func(msg string) string {
		return `{"jsonrpc":"2.0","id":3,"error":{"code":-32004,"message":"` + msg + `"}}`
	}
	for _, tc := range []struct {
		name       string
		status     int
		retryAfter string
		body       string
		err        error
		kind       string
		wait       time.Duration
	}{
		{name: "hub down", err: &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)},
			kind: "connection refused (the hub is down)", wait: time.Second},
		{name: "other transport failure", err: io.ErrUnexpectedEOF},
		{name: "proxy without a router", status: 503, body: "<html>Service Unavailable</html>",
			kind: "503 from the hub or its proxy, no router behind the URL", wait: time.Second},
		{name: "hub before its proxy routes the router", status: 403, body: "<html>'_xsrf' argument missing</html>",
			kind: "403 from the hub or its proxy, no router behind the URL", wait: time.Second},
		{name: "hub at capacity", status: 503, retryAfter: "30",
			body: rpc("JupyterHub is at capacity and cannot start agent001's server now (Too many users trying to log in right now. Try again in 40 seconds.); retry later"),
			kind: "at capacity (the hub): Too many users trying to log in right now. Try again in N seconds.", wait: 30 * time.Second},
		{name: "router at capacity", status: 503, retryAfter: "2", body: rpc("the hub's MCP service is at capacity (512 requests in flight, the most it takes); retry in a moment"),
			kind: "at capacity (the router)", wait: 2 * time.Second},
		{name: "router stopping", status: 503, retryAfter: "5", body: rpc("the hub's MCP service is stopping (the hub restarts or shuts down); retry in a moment"),
			kind: "503 from the router: the hub's MCP service is stopping (the hub restarts or shuts down); retry in a moment", wait: 5 * time.Second},
		{name: "call cut off", status: 503, retryAfter: "5", body: rpc("the hub's MCP service is stopping (the hub restarts or shuts down) and this call ran longer than it could wait: the call was cut off, as if cancelled")},
		{name: "server unreachable after forwarding", status: 502, body: rpc("cannot reach your server through the hub's proxy: EOF")},
		{name: "token refused", status: 403, body: rpc("JupyterHub does not accept this token (wrong, expired or revoked, or its user was deleted)")},
		{name: "answered", status: 200, body: `{"jsonrpc":"2.0","id":3,"result":{}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var resp *http.Response
			if tc.err == nil {
				resp = &http.Response{StatusCode: tc.status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(tc.body))}
				if tc.retryAfter != "" {
					resp.Header.Set("Retry-After", tc.retryAfter)
				}
			}
			kind, wait := refusal(resp, tc.err)
			if kind != tc.kind || wait != tc.wait {
				t.Fatalf("refusal = %q, %s; want %q, %s", kind, wait, tc.kind, tc.wait)
			}
			if resp != nil {
				if body, _ := io.ReadAll(resp.Body); string(body) != tc.body {
					t.Fatalf("the body left for the client: %q, want %q", body, tc.body)
				}
			}
		})
	}
}
