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
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/notebook"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

// BenchmarkSoak runs for SOAK_DURATION (default 10m); SOAK_RACE=1 builds the
// sidecar with the race detector; SOAK_PACE sets how the three agents of
// the shared notebook call (see pace).
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
	race := os.Getenv("SOAK_RACE") == "1"
	dir := b.TempDir()
	bin, err := labtest.BuildSidecar(filepath.Join(dir, "bin"), race)
	if err != nil {
		b.Fatal(err)
	}
	lab, err := labtest.Start(bin, filepath.Join(dir, "lab"), "soak-token")
	if err != nil {
		b.Fatal(err)
	}
	defer lab.Stop()
	for range b.N {
		s := &soak{b: b, lab: lab, pace: pace, expect: map[string]string{}, deleted: map[string]bool{}}
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
}

// tally counts one tool's calls and how long they took.
type tally struct {
	ok, failed int
	total, max time.Duration
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

	page := s.openPage(ctx)
	b.ResetTimer()
	start := time.Now()
	loadCtx, stop := context.WithDeadline(ctx, start.Add(duration))
	defer stop()
	// Memory and goroutines once every session, room and kernel is in use
	// (a quarter in), against the same at the end of the load.
	warm := make(chan sidecarStats, 1)
	time.AfterFunc(duration/4, func() { warm <- s.stats(ctx) })
	var wg sync.WaitGroup
	for agent := range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); s.sharedAgent(loadCtx, agent) }()
	}
	wg.Add(2)
	go func() { defer wg.Done(); s.otherAgent(loadCtx) }()
	go func() { defer wg.Done(); s.person(loadCtx, page) }()
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	startStats, endStats := <-warm, s.stats(ctx)

	// The page catches up: how long after the load stopped it shows
	// exactly what the agents read.
	var problems []string
	final := s.read(setup)
	caughtUp := time.Now()
	pageLag := "never (5 min)"
	if _, err := chromedp.Run(page, chromedp.Poll[bool](fmt.Sprintf(`JSON.stringify(jupyterapp.shell.currentWidget.context.model.sharedModel.toJSON().cells.map(c => [c.id, Array.isArray(c.source) ? c.source.join('') : c.source])) === %q`, pairs(final)),
		chromedp.WithPollingTimeout(5*time.Minute))); err != nil {
		problems = append(problems, fmt.Sprintf("the page never matched read_notebook: %v", err))
	} else {
		pageLag = fmt.Sprintf("%.1f s", time.Since(caughtUp).Seconds())
	}

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
	fmt.Printf("soak: %s, race detector %v, pace %s, %d cells in %s at the end\n", elapsed.Round(time.Second), os.Getenv("SOAK_RACE") == "1", pace, len(final), shared)
	fmt.Printf("  the three agents of %s: %d calls, %.1f / s\n", shared, s.shared, float64(s.shared)/elapsed.Seconds())
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
	fmt.Printf("  person typed   %6d lines  %6.1f / min\n", len(s.typed), float64(len(s.typed))/minutes)
	fmt.Printf("  lost edits %d, duplicated cells %d\n", lost, dup)
	fmt.Printf("  file read right after save_notebook: %d times, %d without the edit\n", s.saveChecks, s.saveMisses)
	fmt.Printf("  page caught up %s after the load stopped\n", pageLag)
	fmt.Printf("  sidecar a quarter in → at the end: RSS %.1f → %.1f MiB, heap %.1f → %.1f MiB, goroutines %d → %d\n",
		startStats.rss/1024, endStats.rss/1024, float64(startStats.Heap)/(1<<20), float64(endStats.Heap)/(1<<20), startStats.Goroutines, endStats.Goroutines)
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
		ins, ok := call("insert_cell", map[string]any{"path": shared, "source": src, "index": -1})
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
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		line := fmt.Sprintf("p_%d = %d", n, n)
		// Keys go to the focused editor (see the browser tests for why
		// not SendKeys); End first, in case an agent edit moved the cursor.
		if err := chromedp.Do(page, chromedp.KeyEvent(kb.End), chromedp.KeyEvent("\n"+line)); err != nil {
			s.b.Errorf("typing: %v", err)
			return
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

func (s *soak) openPage(ctx context.Context) context.Context {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath("/usr/bin/chromium"), chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.WindowSize(1400, 1000), chromedp.UserDataDir(s.b.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	page, cancel := chromedp.NewContext(actx)
	s.b.Cleanup(func() { cancel(); cancelAlloc() })
	url := fmt.Sprintf("%slab/workspaces/soak/tree/%s?token=%s", s.lab.URL, shared, s.lab.Token)
	if err := chromedp.Do(page, chromedp.Navigate(url), chromedp.WaitVisible(`.jp-NotebookPanel .jp-Cell .cm-content`)); err != nil {
		s.b.Fatalf("open the notebook in the browser: %v", err)
	}
	return page
}

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
