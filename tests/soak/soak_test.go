// Package soak holds the long run behind `make soak`: a person typing in
// JupyterLab (headless Chromium) while three agents insert, edit, delete and
// execute in the same notebook and a fourth works in another one, all
// through the real proxy. At the end the page, read_notebook and the file
// must agree, with nothing lost or duplicated, and the sidecar's memory and
// goroutines must be flat. It is a benchmark so that `go test ./...` (and
// CI) leave it out; it prints its figures.
package soak

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/performance"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/jupyter"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/notebook"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/yjs/yproto"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

// BenchmarkSoak runs for SOAK_DURATION (default 10m); SOAK_RACE=1 builds the
// sidecar with the race detector; SOAK_PACE sets how the three agents of
// the shared notebook call (see pace); SOAK_TYPING how many keys a second
// the person types (default 10, a fast typist: about 120 words a minute).
func BenchmarkSoak(b *testing.B) {
	duration := 10 * time.Minute
	if v := os.Getenv("SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("SOAK_DURATION: %v", err)
		}
		duration = d
	}
	pace, err := parsePace(os.Getenv("SOAK_PACE"))
	if err != nil {
		b.Fatal(err)
	}
	labRate, err := parseLabAgents(os.Getenv("SOAK_AGENTS"))
	if err != nil {
		b.Fatal(err)
	}
	keysPerSecond := 10.0
	if v := os.Getenv("SOAK_TYPING"); v != "" {
		if keysPerSecond, err = strconv.ParseFloat(v, 64); err != nil || keysPerSecond <= 0 {
			b.Fatalf("SOAK_TYPING %q: use the keys a second the person types, e.g. 10", v)
		}
	}
	race := os.Getenv("SOAK_RACE") == "1"
	var env []string
	if mode := os.Getenv("SOAK_WINDOWING"); mode != "" {
		settings, err := windowing(filepath.Join(b.TempDir(), "settings"), mode)
		if err != nil {
			b.Fatal(err)
		}
		env = append(env, "JUPYTERLAB_SETTINGS_DIR="+settings)
	}
	dir := b.TempDir()
	bin, err := labtest.BuildSidecar(filepath.Join(dir, "bin"), race)
	if err != nil {
		b.Fatal(err)
	}
	lab, err := labtest.Start(bin, filepath.Join(dir, "lab"), "soak-token", env...)
	if err != nil {
		b.Fatal(err)
	}
	defer lab.Stop()
	for range b.N {
		s := &soak{b: b, lab: lab, pace: pace, labRate: labRate, keyEvery: time.Duration(float64(time.Second) / keysPerSecond), expect: map[string]string{}, deleted: map[string]bool{}}
		s.run(duration)
	}
	if data, err := os.ReadFile(lab.LogPath); err == nil && strings.Contains(string(data), "WARNING: DATA RACE") {
		b.Fatalf("the sidecar reported a data race; log: %s", lab.LogPath)
	}
}

const (
	shared = "shared.ipynb" // the person and three agents
	other  = "other.ipynb"  // the fourth agent
)

type soak struct {
	b    *testing.B
	lab  *labtest.Lab
	pace time.Duration // the least time between a shared agent's calls; 0: none
	// labRate, if not 0, has the shared notebook's three agents be
	// JupyterLab itself: a tab making that many operations a second in all
	// (see labAgents).
	labRate float64
	// keyEvery is the time between the person's keys.
	keyEvery time.Duration
	// windowing is the open notebook's windowing mode in the page (how
	// much of the notebook JupyterLab keeps rendered).
	windowing string

	mu      sync.Mutex
	expect  map[string]string // agent cell id → the source it must have in shared.ipynb
	deleted map[string]bool   // agent cells deleted from shared.ipynb
	calls   map[string]*tally // calls per tool
	failed  map[string]int    // failed calls by their error, ids and times masked
	shared  int               // calls the three shared agents made
	// saveChecks counts the files read right after save_notebook,
	// saveMisses those that lacked the agent's last edit.
	saveChecks, saveMisses int
	typed                  []string // lines the person typed, in order
	keys                   int      // keys the person typed
	// lastBroadcast is when the room's server last sent a document
	// update to a peer that only listens (listenRoom).
	lastBroadcast time.Time
	// heard counts the messages that peer got: document updates,
	// awareness, the rest; each also reaches the person's page.
	heard [3]int
}

// tally counts one tool's calls and how long they took.
type tally struct {
	ok, failed int
	total, max time.Duration
}

// windowing writes JupyterLab user settings under dir that open notebooks
// in windowing mode (SOAK_WINDOWING: full, contentVisibility, defer or
// none), to measure what the page's rendering costs in each.
func windowing(dir, mode string) (string, error) {
	if !slices.Contains([]string{"full", "contentVisibility", "defer", "none"}, mode) {
		return "", fmt.Errorf("SOAK_WINDOWING %q: use full, contentVisibility, defer or none", mode)
	}
	at := filepath.Join(dir, "@jupyterlab", "notebook-extension")
	if err := os.MkdirAll(at, 0o755); err != nil {
		return "", err
	}
	data := fmt.Sprintf(`{"windowingMode": %q}`, mode)
	return dir, os.WriteFile(filepath.Join(at, "tracker.jupyterlab-settings"), []byte(data), 0o644)
}

// parsePace reads SOAK_PACE: unset or "max", the shared agents call as
// fast as calls return; a duration ("300ms"), each waits that long from
// the start of one call to the start of the next.
func parsePace(v string) (time.Duration, error) {
	if v == "" || v == "max" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("SOAK_PACE %q: use max, or the time between a shared agent's calls (e.g. 300ms)", v)
	}
	return d, nil
}

// record counts a call; a failure is kept by its message, with the parts
// that differ from call to call (cell ids, times, paths of temporary
// folders) masked, so that alike failures add up.
func (s *soak) record(tool string, took time.Duration, shared bool, failure string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls == nil {
		s.calls, s.failed = map[string]*tally{}, map[string]int{}
	}
	t := s.calls[tool]
	if t == nil {
		t = &tally{}
		s.calls[tool] = t
	}
	t.total += took
	t.max = max(t.max, took)
	if shared {
		s.shared++
	}
	if failure == "" {
		t.ok++
		return
	}
	t.failed++
	s.failed[tool+": "+maskFailure(failure)]++
}

var (
	cellIDPattern = regexp.MustCompile(`\b[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}\b|\b[0-9a-f]{8,32}\b`)
	clockPattern  = regexp.MustCompile(`\b\d{2}:\d{2}:\d{2}\.\d{3}\b`)
	editsPattern  = regexp.MustCompile(`(the edit of T UTC \([^)]*\)(, )?)+`)
)

func maskFailure(msg string) string {
	msg = cellIDPattern.ReplaceAllString(msg, "ID")
	msg = clockPattern.ReplaceAllString(msg, "T")
	return editsPattern.ReplaceAllString(msg, "EDITS")
}

func (s *soak) run(duration time.Duration) {
	b := s.b
	ctx := b.Context()
	setup := s.session(ctx)
	labtest.Call[map[string]any](b, setup, "create_notebook", map[string]any{"path": shared})
	labtest.Call[map[string]any](b, setup, "create_notebook", map[string]any{"path": other})
	first := labtest.Call[struct {
		Cells []struct {
			ID string `json:"id"`
		} `json:"cells"`
	}](b, setup, "read_notebook", map[string]any{"path": shared})
	personCell := first.Cells[0].ID
	labtest.Call[map[string]any](b, setup, "edit_cell", map[string]any{"path": shared, "cell_id": personCell, "source": "person = 0"})

	page := s.openPage(ctx, "soak", pageProbe)
	s.listenRoom(ctx)
	var agentsPage context.Context
	if s.labRate > 0 {
		agentsPage = s.openPage(ctx, "agents", "")
	}
	b.ResetTimer()
	atStart := s.mainThread(page)
	start := time.Now()
	loadCtx, stop := context.WithDeadline(ctx, start.Add(duration))
	defer stop()
	// Memory and goroutines once every session, room and kernel is in use
	// (a quarter in), against the same at the end of the load.
	warm := make(chan sidecarStats, 1)
	time.AfterFunc(duration/4, func() { warm <- s.stats(ctx) })
	var wg sync.WaitGroup
	if s.labRate > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); s.labAgents(agentsPage, duration) }()
	} else {
		for agent := range 3 {
			wg.Add(1)
			go func() { defer wg.Done(); s.sharedAgent(loadCtx, agent) }()
		}
	}
	wg.Add(2)
	go func() { defer wg.Done(); s.otherAgent(loadCtx) }()
	go func() { defer wg.Done(); s.person(loadCtx, page) }()
	wg.Wait()
	loadEnd := time.Now()
	atEnd := s.mainThread(page)
	elapsed := loadEnd.Sub(start)
	b.StopTimer()
	startStats, endStats := <-warm, s.stats(ctx)

	// The page catches up: how long after the load stopped it shows
	// exactly what the agents read.
	var problems []string
	final := s.read(setup)
	pageCaughtUp := true
	if _, err := chromedp.Run(page, chromedp.Poll[bool](fmt.Sprintf(`JSON.stringify(jupyterapp.shell.currentWidget.context.model.sharedModel.toJSON().cells.map(c => [c.id, Array.isArray(c.source) ? c.source.join('') : c.source])) === %q`, pairs(final)),
		chromedp.WithPollingTimeout(5*time.Minute))); err != nil {
		problems = append(problems, fmt.Sprintf("the page never matched read_notebook: %v", err))
		pageCaughtUp = false
	}
	matched := time.Now()
	atMatch := s.mainThread(page)
	profile, err := chromedp.Run(page, chromedp.Evaluate[pageProfile](`window.__soakProbe`))
	if err != nil {
		b.Fatalf("read the page's profile: %v", err)
	}
	during, after := profile.phase(start, loadEnd), profile.phase(loadEnd, matched)
	s.mu.Lock()
	broadcastEnd := s.lastBroadcast
	s.mu.Unlock()

	// Durable: after one more agent edit the room writes the file in the
	// background (within about a second); it must then be what
	// read_notebook says. Polled, with a deadline far beyond that second.
	s.after(setup, "edit_cell", map[string]any{"path": shared, "cell_id": personCell, "old_text": "person = 0", "new_text": "person = 1"})
	final = s.read(setup)
	var got string
	for deadline := time.Now().Add(30 * time.Second); ; {
		disk, err := os.ReadFile(filepath.Join(s.lab.Root, shared))
		if err != nil {
			b.Fatal(err)
		}
		// jupyter_server writes the file in place (its "atomic" writing
		// keeps a backup copy instead), so a read can catch it half written.
		if onDisk, err := notebook.Parse(disk); err != nil {
			got = fmt.Sprintf("not a valid notebook: %v", err)
		} else {
			var diskCells [][2]string
			for _, c := range onDisk.Cells {
				diskCells = append(diskCells, [2]string{c.ID, c.Source})
			}
			if got = fmt.Sprint(diskCells); got == fmt.Sprint(final) {
				break
			}
		}
		if time.Now().After(deadline) {
			problems = append(problems, fmt.Sprintf("file and read_notebook still differ 30 s after the last edit:\nfile %s\nread %s", got, fmt.Sprint(final)))
			break
		}
		time.Sleep(100 * time.Millisecond) // polling the file, with a deadline
	}
	lost, dup := s.check(final, personCell)

	minutes := elapsed.Minutes()
	s.mu.Lock()
	defer s.mu.Unlock()
	pace := "max (as fast as calls return)"
	if s.pace > 0 {
		pace = fmt.Sprintf("a call every %s per agent", s.pace)
	}
	fmt.Printf("soak: %s, race detector %v, pace %s, %d cells in %s at the end, page's windowing mode %s\n", elapsed.Round(time.Second), os.Getenv("SOAK_RACE") == "1", pace, len(final), shared, s.windowing)
	who := "the three agents of %s: %d calls, %.1f / s\n"
	if s.labRate > 0 {
		who = "the three agents of %s, a JupyterLab tab's model (no runs): %d operations, %.1f / s\n"
	}
	fmt.Printf("  "+who, shared, s.shared, float64(s.shared)/elapsed.Seconds())
	var failed int
	for _, tool := range slices.Sorted(maps.Keys(s.calls)) {
		t := s.calls[tool]
		n := t.ok + t.failed
		failed += t.failed
		fmt.Printf("  %-14s %6d calls  %6.1f / min  %4d failed  mean %5.0f ms  max %6.0f ms\n", tool, t.ok, float64(t.ok)/minutes, t.failed,
			float64(t.total.Milliseconds())/float64(n), float64(t.max.Milliseconds()))
	}
	fmt.Printf("  failed calls %d\n", failed)
	for _, msg := range slices.Sorted(maps.Keys(s.failed)) {
		fmt.Printf("    %4d × %s\n", s.failed[msg], msg)
	}
	fmt.Printf("  person typed   %6d lines  %6.1f / min (%d keys, %.1f / s)\n", len(s.typed), float64(len(s.typed))/minutes, s.keys, float64(s.keys)/elapsed.Seconds())
	fmt.Printf("  lost edits %d, duplicated cells %d\n", lost, dup)
	fmt.Printf("  file read right after save_notebook: %d times, %d without the edit\n", s.saveChecks, s.saveMisses)
	lag := matched.Sub(loadEnd)
	if pageCaughtUp {
		fmt.Printf("  page caught up %.1f s after the load stopped (its last call answered)\n", lag.Seconds())
	} else {
		fmt.Println("  page caught up: never (5 min)")
	}
	longest := max(during.longest, after.longest)
	fmt.Printf("  page's longest main-thread task %.0f ms (during the load %.0f ms, after it %.0f ms)\n", ms(longest), ms(during.longest), ms(after.longest))
	for _, ph := range []struct {
		name     string
		p        phase
		span     time.Duration
		from, to mainThread
	}{{"during the load", during, loadEnd.Sub(start), atStart, atEnd}, {"after it", after, matched.Sub(loadEnd), atEnd, atMatch}} {
		busy := ph.to.sub(ph.from)
		fmt.Printf("  page %-15s %5.1f s: main thread busy %5.1f s (%3.0f%%: scripts %.1f s, style and layout %.1f s); in long tasks %5.1f s; %6d room messages, their handlers (applying updates, JupyterLab's model) %5.1f s\n",
			ph.name, ph.span.Seconds(), busy.task, 100*busy.task/ph.span.Seconds(), busy.script, busy.style+busy.layout,
			ph.p.inTasks.Seconds(), ph.p.messages, ph.p.handling.Seconds())
	}
	fmt.Printf("  room broadcast: a peer that only listens got the room's last update %.1f s after the load stopped", broadcastEnd.Sub(loadEnd).Seconds())
	if !after.lastMessage.IsZero() {
		fmt.Printf("; the page handled its last room message %.1f s after it", after.lastMessage.Sub(loadEnd).Seconds())
	}
	fmt.Println()
	fmt.Printf("  messages the listening peer got (the page gets them too): %d document updates, %d awareness, %d other\n", s.heard[0], s.heard[1], s.heard[2])
	fmt.Printf("  sidecar a quarter in → at the end: RSS %.1f → %.1f MiB, heap %.1f → %.1f MiB, goroutines %d → %d\n",
		startStats.rss/1024, endStats.rss/1024, float64(startStats.Heap)/(1<<20), float64(endStats.Heap)/(1<<20), startStats.Goroutines, endStats.Goroutines)
	// The person's page holds every acknowledged edit soon after the load,
	// and never stops answering for long meanwhile.
	fmt.Println(labtest.GoalLine("the page caught up after the load stopped", "s", lag.Seconds(), 2, "<=", 1))
	fmt.Println(labtest.GoalLine("the page's longest main-thread task", "ms", ms(longest), 1000, "<=", 1))
	if lost != 0 || dup != 0 {
		problems = append(problems, fmt.Sprintf("%d lost edits, %d duplicated cells", lost, dup))
	}
	if failed != 0 {
		problems = append(problems, fmt.Sprintf("%d failed calls", failed))
	}
	if s.saveMisses != 0 {
		problems = append(problems, fmt.Sprintf("%d files without the edit right after save_notebook", s.saveMisses))
	}
	if len(problems) > 0 {
		b.Fatal(strings.Join(problems, "\n"))
	}
}

// check compares the final cells with what the agents and the person did:
// every agent cell with its last source, none deleted one, no cell twice,
// and the person's lines in order.
func (s *soak) check(final [][2]string, personCell string) (lost, dup int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seenID, seenSrc := map[string]bool{}, map[string]bool{}
	got := map[string]string{}
	for _, c := range final {
		if seenID[c[0]] || (c[1] != "" && seenSrc[c[1]]) {
			dup++
			s.b.Errorf("duplicated cell %s %q", c[0], c[1])
		}
		seenID[c[0]], seenSrc[c[1]] = true, true
		got[c[0]] = c[1]
	}
	for id, src := range s.expect {
		if got[id] != src {
			lost++
			s.b.Errorf("agent cell %s: %q, want %q", id, got[id], src)
		}
	}
	for id := range s.deleted {
		if _, ok := got[id]; ok {
			lost++
			s.b.Errorf("deleted cell %s is back", id)
		}
	}
	person := got[personCell]
	at := 0
	for _, line := range s.typed {
		i := strings.Index(person[at:], line)
		if i < 0 {
			lost++
			s.b.Errorf("the person's line %q is missing or out of order", line)
			continue
		}
		at += i + len(line)
	}
	return lost, dup
}

// sharedAgent inserts its own cells, edits them by substring, deletes one
// now and then (a recent one) and runs one now and then, recording what
// each must hold.
// A failed call is counted and the agent goes on: every failure the
// sidecar reports says the call did nothing, which check holds it to.
func (s *soak) sharedAgent(ctx context.Context, agent int) {
	cs := s.session(s.b.Context())
	call := s.paced(ctx, cs)
	var mine []string
	for n := 0; ctx.Err() == nil; n++ {
		src := fmt.Sprintf("a%d_%d = %d", agent, n, n)
		ins, ok := call("insert_cell", map[string]any{"path": shared, "source": src, "index": insertAt(n)})
		if !ok {
			continue
		}
		var cell struct {
			CellID string `json:"cell_id"`
		}
		if err := json.Unmarshal(ins, &cell); err != nil || cell.CellID == "" {
			s.b.Errorf("insert_cell answered %s: %v", ins, err)
			return
		}
		s.mu.Lock()
		s.expect[cell.CellID] = src
		s.mu.Unlock()
		mine = append(mine, cell.CellID)
		if _, ok := call("edit_cell", map[string]any{"path": shared, "cell_id": cell.CellID, "old_text": fmt.Sprintf("= %d", n), "new_text": fmt.Sprintf("= %d + 1", n)}); ok {
			s.mu.Lock()
			s.expect[cell.CellID] = fmt.Sprintf("a%d_%d = %d + 1", agent, n, n)
			s.mu.Unlock()
		}
		switch {
		case n%5 == 4 && len(mine) > 1:
			// Delete its cell of the round before, inserted a moment ago:
			// maybe before the room saved it, which is no failure to save.
			victim := mine[len(mine)-2]
			if _, ok := call("delete_cells", map[string]any{"path": shared, "cell_ids": []string{victim}}); ok {
				mine = slices.Delete(mine, len(mine)-2, len(mine)-1)
				s.mu.Lock()
				delete(s.expect, victim)
				s.deleted[victim] = true
				s.mu.Unlock()
			}
		case n%3 == 2:
			call("execute_cell", map[string]any{"path": shared, "cell_id": cell.CellID, "timeout": 30})
		case n%7 == 6: // the file must hold the cell as it is now, at once
			if _, ok := call("save_notebook", map[string]any{"path": shared}); ok {
				s.mu.Lock()
				want := s.expect[cell.CellID]
				s.mu.Unlock()
				s.checkSaved(cell.CellID, want)
			}
		}
	}
}

// insertAt is where an agent's n-th cell goes: every other one right
// under the person's cell (in view, as the person sees it), the others at
// the end (out of view once the notebook is long).
func insertAt(n int) int {
	if n%2 == 0 {
		return 1
	}
	return -1
}

// checkSaved reads the shared notebook's file right after save_notebook
// returned and counts a miss unless cell id holds want. A room save may be
// writing the file again (in place): it is read until it parses, and such
// a later write holds the edit too.
func (s *soak) checkSaved(id, want string) {
	var got string
	for deadline := time.Now().Add(5 * time.Second); ; {
		data, err := os.ReadFile(filepath.Join(s.lab.Root, shared))
		if err != nil {
			s.b.Error(err)
			return
		}
		nb, err := notebook.Parse(data)
		if err == nil {
			got = "no such cell"
			for _, c := range nb.Cells {
				if c.ID == id {
					got = c.Source
				}
			}
			break
		}
		if time.Now().After(deadline) {
			got = "not a valid notebook: " + err.Error()
			break
		}
		time.Sleep(20 * time.Millisecond) // polling the file, with a deadline
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.saveChecks++
	if got != want {
		s.saveMisses++
		s.b.Errorf("save_notebook returned, and the file's cell %s is %q, not %q", id, got, want)
	}
}

// paced is a shared agent's way to call: call, at most one call per
// s.pace.
func (s *soak) paced(load context.Context, cs *mcp.ClientSession) func(string, map[string]any) (json.RawMessage, bool) {
	var next time.Time
	return func(tool string, args map[string]any) (json.RawMessage, bool) {
		if wait := time.Until(next); wait > 0 {
			select {
			case <-load.Done():
			case <-time.After(wait): // the pace asked for, not a synchronisation
			}
		}
		next = time.Now().Add(s.pace)
		return s.call(load, cs, tool, args, true)
	}
}

// parseLabAgents reads SOAK_AGENTS: unset or "mcp", the shared notebook's
// agents call the sidecar; "jupyterlab:<ops per second>" has a JupyterLab
// tab make their operations through its notebook model instead, at that
// rate in all (e.g. the rate an MCP run reached), to tell JupyterLab's
// own cost of rendering that many changes from ours.
func parseLabAgents(v string) (float64, error) {
	if v == "" || v == "mcp" {
		return 0, nil
	}
	rate, err := strconv.ParseFloat(strings.TrimPrefix(v, "jupyterlab:"), 64)
	if !strings.HasPrefix(v, "jupyterlab:") || err != nil || rate <= 0 {
		return 0, fmt.Errorf("SOAK_AGENTS %q: use mcp, or jupyterlab:<operations per second>, e.g. jupyterlab:16", v)
	}
	return rate, nil
}

// labAgents is the three shared agents' work (insert, edit by substring,
// delete one of its cells now and then; no runs) made by the JupyterLab
// tab page through its notebook model, at s.labRate operations a second in
// all, for duration; what each cell must hold is recorded as for the
// agents.
func (s *soak) labAgents(page context.Context, duration time.Duration) {
	js := fmt.Sprintf(`(async () => {
		const m = [...jupyterapp.shell.widgets('main')].find(w => w.content?.model?.sharedModel).content.model.sharedModel;
		const expect = {}, deleted = [], start = Date.now(), end = start + %d, gap = %f;
		let ops = 0;
		await Promise.all([0, 1, 2].map(async agent => {
			// Each agent's k-th operation is due at start + k × gap: an
			// agent behind (this tab renders too) catches up at once.
			let due = start;
			const pause = () => new Promise(r => setTimeout(r, Math.max(0, (due += gap) - Date.now())));
			const mine = [];
			for (let n = 0; Date.now() < end; n++) {
				const src = 'l' + agent + '_' + n + ' = ' + n;
				const id = m.insertCell(n %% 2 ? m.cells.length : 1, {cell_type: 'code', source: src}).id;
				ops++; expect[id] = src; mine.push(id);
				await pause();
				const c = m.cells.find(c => c.id === id), at = c.source.indexOf('= ' + n);
				c.updateSource(at, at + ('= ' + n).length, '= ' + n + ' + 1');
				ops++; expect[id] = src + ' + 1';
				await pause();
				if (n %% 5 === 4 && mine.length > 1) {
					const victim = mine.splice(mine.length - 2, 1)[0];
					m.deleteCell(m.cells.findIndex(c => c.id === victim));
					ops++; delete expect[victim]; deleted.push(victim);
					await pause();
				}
			}
		}));
		return {expect, deleted, ops};
	})()`, duration.Milliseconds(), 3000/s.labRate)
	out, err := chromedp.Run(page, chromedp.Evaluate[struct {
		Expect  map[string]string `json:"expect"`
		Deleted []string          `json:"deleted"`
		Ops     int               `json:"ops"`
	}](js, chromedp.EvalAwaitPromise))
	if err != nil {
		s.b.Errorf("the JupyterLab agents: %v", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	maps.Copy(s.expect, out.Expect)
	for _, id := range out.Deleted {
		s.deleted[id] = true
	}
	s.shared += out.Ops
}

// otherAgent works in a notebook of its own: insert and run.
func (s *soak) otherAgent(ctx context.Context) {
	cs := s.session(s.b.Context())
	for n := 0; ctx.Err() == nil; n++ {
		s.call(ctx, cs, "insert_cell", map[string]any{"path": other, "source": fmt.Sprintf("print(%d)", n), "execute": true, "timeout": 30}, false)
	}
}

// person types a numbered line into the first cell about every 200 ms.
func (s *soak) person(ctx context.Context, page context.Context) {
	first := `.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell:first-child .cm-content`
	if err := chromedp.Do(page, chromedp.Click(first), chromedp.KeyEvent(kb.End)); err != nil {
		s.b.Errorf("focus the person's cell: %v", err)
		return
	}
	tick := time.NewTicker(s.keyEvery)
	defer tick.Stop()
	for n := 0; ; n++ {
		line := fmt.Sprintf("p_%d = %d", n, n)
		// A new line, then the line one key at a time. Keys go to the
		// focused editor (see the browser tests for why not SendKeys);
		// End first, in case an agent edit moved the cursor.
		keys := []chromedp.Action[chromedp.Void]{chromedp.KeyEvent(kb.End + "\n")}
		for _, r := range line {
			keys = append(keys, chromedp.KeyEvent(string(r)))
		}
		for _, key := range keys {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if err := chromedp.Do(page, key); err != nil {
				s.b.Errorf("typing: %v", err)
				return
			}
			s.mu.Lock()
			s.keys++
			s.mu.Unlock()
		}
		s.mu.Lock()
		s.typed = append(s.typed, line)
		s.mu.Unlock()
	}
}

// call makes one tool call unless the load is over (a call is never cut
// off, so that the soak knows the effect of each one) and records it (a
// call by one of the shared notebook's agents if shared). It returns the
// structured result of a call that succeeded.
func (s *soak) call(load context.Context, cs *mcp.ClientSession, tool string, args map[string]any, shared bool) (json.RawMessage, bool) {
	if load.Err() != nil {
		return nil, false
	}
	start := time.Now()
	res, err := cs.CallTool(s.b.Context(), &mcp.CallToolParams{Name: tool, Arguments: args})
	took := time.Since(start)
	switch {
	case err != nil:
		s.record(tool, took, shared, "protocol error: "+err.Error())
		return nil, false
	case res.IsError:
		s.record(tool, took, shared, labtest.ResultText(res))
		return nil, false
	}
	s.record(tool, took, shared, "")
	data, _ := json.Marshal(res.StructuredContent)
	return data, true
}

func (s *soak) session(ctx context.Context) *mcp.ClientSession {
	cs, err := s.lab.Connect(ctx, "mcp", "token "+s.lab.Token)
	if err != nil {
		s.b.Fatal(err)
	}
	s.b.Cleanup(func() { cs.Close() })
	return cs
}

// after makes a call once the load is over: a failure is counted (the
// sidecar may report an earlier edit not saved, the call then doing
// nothing) and the call made again, at most three times in all.
func (s *soak) after(cs *mcp.ClientSession, tool string, args map[string]any) json.RawMessage {
	for range 3 {
		if out, ok := s.call(s.b.Context(), cs, tool, args, false); ok {
			return out
		}
	}
	s.b.Fatalf("%s failed three times in a row", tool)
	return nil
}

// read is the shared notebook's cells as (id, source) pairs.
func (s *soak) read(cs *mcp.ClientSession) [][2]string {
	var all [][2]string
	for start := 0; ; {
		var r struct {
			Total int `json:"total_cells"`
			Next  int `json:"next_start"`
			Cells []struct {
				ID     string `json:"id"`
				Source string `json:"source"`
			} `json:"cells"`
		}
		out := s.after(cs, "read_notebook", map[string]any{"path": shared, "start": start, "limit": 500, "detail": "full"})
		if err := json.Unmarshal(out, &r); err != nil {
			s.b.Fatalf("read_notebook: %v", err)
		}
		for _, c := range r.Cells {
			all = append(all, [2]string{c.ID, c.Source})
		}
		if r.Next == 0 || r.Next >= r.Total {
			return all
		}
		start = r.Next
	}
}

func pairs(cells [][2]string) string {
	out := make([][]string, len(cells))
	for i, c := range cells {
		out[i] = []string{c[0], c[1]}
	}
	data, _ := json.Marshal(out)
	return string(data)
}

// openPage opens the shared notebook in JupyterLab in a Chromium of its
// own, in workspace, with the script probe (if any) run before
// JupyterLab's.
func (s *soak) openPage(ctx context.Context, workspace, probe string) context.Context {
	page := labtest.Chromium(s.b, ctx)
	if probe != "" {
		if _, err := chromedp.Call(page, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: probe}); err != nil {
			s.b.Fatal(err)
		}
	}
	addr := fmt.Sprintf("%slab/workspaces/%s/tree/%s?token=%s", s.lab.URL, workspace, shared, s.lab.Token)
	if err := chromedp.Do(page, chromedp.Navigate(addr), chromedp.WaitVisible(`.jp-NotebookPanel .jp-Cell .cm-content`)); err != nil {
		s.b.Fatalf("open the notebook in the browser: %v", err)
	}
	mode := `[...jupyterapp.shell.widgets('main')].find(w => w.content?.notebookConfig).content.notebookConfig.windowingMode`
	got, err := chromedp.Run(page, chromedp.Evaluate[string](mode))
	if err != nil {
		s.b.Fatalf("the page's windowing mode: %v", err)
	}
	s.windowing = got
	return page
}

// listenRoom joins the shared notebook's room as a peer that only listens,
// until ctx ends, and records when the server last sent it a document
// update: how long the room's broadcast itself runs behind, apart from
// the page.
func (s *soak) listenRoom(ctx context.Context) {
	jc, err := jupyter.NewClient(&jupyter.ServerInfo{URL: s.lab.URL, Token: s.lab.Token})
	if err != nil {
		s.b.Fatal(err)
	}
	session, err := jc.CollaborationSession(ctx, shared)
	if err != nil {
		s.b.Fatal(err)
	}
	ws, err := jc.DialWebsocket(ctx, "api/collaboration/room/json:notebook:"+session.FileID, url.Values{"sessionId": {session.SessionID}}, nil)
	if err != nil {
		s.b.Fatal(err)
	}
	ws.SetReadLimit(1 << 30)
	context.AfterFunc(ctx, func() { ws.Close() })
	go func() {
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			m, err := yproto.Decode(data)
			s.mu.Lock()
			switch {
			case err == nil && m.Type == yproto.MessageSync && m.SyncType == yproto.SyncUpdate:
				s.lastBroadcast = time.Now()
				s.heard[0]++
			case err == nil && m.Type == yproto.MessageAwareness:
				s.heard[1]++
			default:
				s.heard[2]++
			}
			s.mu.Unlock()
		}
	}()
}

// pageProbe runs in the page before JupyterLab: it records the page's
// long tasks (over 50 ms: the main thread not answering) and, for each
// message of a notebook room's websocket, when it came and how long its
// handler ran (y-websocket applies the update in it, and JupyterLab's model
// and widgets react synchronously; layout and painting come later, in
// other tasks). Times are wall-clock milliseconds.
const pageProbe = `(() => {
	const probe = window.__soakProbe = {tasks: [], messages: []};
	new PerformanceObserver(list => {
		for (const e of list.getEntries()) probe.tasks.push([performance.timeOrigin + e.startTime, e.duration]);
	}).observe({type: 'longtask', buffered: true});
	const Native = window.WebSocket;
	window.WebSocket = class extends Native {
		constructor(url, protocols) {
			super(url, protocols);
			if (!String(url).includes('/api/collaboration/room/json:notebook:')) return;
			const native = Object.getOwnPropertyDescriptor(Native.prototype, 'onmessage');
			let handler = null;
			Object.defineProperty(this, 'onmessage', {
				get: () => handler,
				set: h => {
					handler = h;
					native.set.call(this, h && function (ev) {
						const start = performance.now();
						try { return h.call(this, ev); } finally {
							probe.messages.push([performance.timeOrigin + start, performance.now() - start]);
						}
					});
				},
			});
		}
	};
})()`

// pageProfile is what pageProbe recorded.
type pageProfile struct {
	Tasks    [][2]float64 `json:"tasks"`    // [start ms, duration ms]
	Messages [][2]float64 `json:"messages"` // [start ms, handler ms]
}

// phase sums a profile over [from, to): the longest task and the time in
// long tasks, the room messages handled and the time their handlers took,
// and when the last of them was handled.
type phase struct {
	longest, inTasks time.Duration
	messages         int
	handling         time.Duration
	lastMessage      time.Time
}

func (p pageProfile) phase(from, to time.Time) phase {
	var ph phase
	in := func(ms float64) bool {
		t := time.UnixMicro(int64(ms * 1000))
		return !t.Before(from) && t.Before(to)
	}
	dur := func(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }
	for _, t := range p.Tasks {
		if in(t[0]) {
			ph.longest = max(ph.longest, dur(t[1]))
			ph.inTasks += dur(t[1])
		}
	}
	for _, m := range p.Messages {
		if in(m[0]) {
			ph.messages++
			ph.handling += dur(m[1])
			ph.lastMessage = time.UnixMicro(int64(m[0] * 1000))
		}
	}
	return ph
}

// mainThread is the page's main-thread time so far, in seconds, as
// Chromium counts it: every task, not only the long ones, split into
// scripts, style and layout (the rest is painting and the browser's own).
type mainThread struct{ task, script, style, layout float64 }

func (m mainThread) sub(o mainThread) mainThread {
	return mainThread{m.task - o.task, m.script - o.script, m.style - o.style, m.layout - o.layout}
}

func (s *soak) mainThread(page context.Context) mainThread {
	if _, err := chromedp.Call(page, performance.Enable, performance.EnableParams{}); err != nil {
		s.b.Fatalf("the page's performance metrics: %v", err)
	}
	got, err := chromedp.Call(page, performance.GetMetrics, cdp.Empty{})
	if err != nil {
		s.b.Fatalf("the page's performance metrics: %v", err)
	}
	var m mainThread
	for _, x := range got.Metrics {
		switch x.Name {
		case "TaskDuration":
			m.task = x.Value
		case "ScriptDuration":
			m.script = x.Value
		case "RecalcStyleDuration":
			m.style = x.Value
		case "LayoutDuration":
			m.layout = x.Value
		}
	}
	return m
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

type sidecarStats struct {
	Goroutines int    `json:"goroutines"`
	Heap       uint64 `json:"heap_bytes"`
	rss        float64
}

// stats asks the sidecar for its goroutines and heap and reads its RSS
// (KiB) from /proc.
func (s *soak) stats(ctx context.Context) sidecarStats {
	var st sidecarStats
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.lab.URL+"mcp/stats", nil)
	resp, err := labtest.AuthClient("token " + s.lab.Token).Do(req)
	if err != nil {
		s.b.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		s.b.Fatalf("/stats: %v", err)
	}
	if pid := s.lab.SidecarPID(); pid != 0 {
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kib, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				st.rss = kib
			}
		}
	}
	return st
}
