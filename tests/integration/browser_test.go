package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// browser opens the notebook in JupyterLab in headless Chromium, as a
// person would, and waits until its cells are shown.
func browser(t *testing.T, nbPath string) context.Context {
	t.Helper()
	ctx := newBrowser(t)
	// A workspace of its own: JupyterLab would otherwise reopen the
	// notebooks of earlier tests.
	url := fmt.Sprintf("%slab/workspaces/t%d/tree/%s?token=%s", shared.URL, time.Now().UnixNano(), nbPath, shared.Token)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS(`.jp-NotebookPanel .jp-Cell .cm-content`)),
	); err != nil {
		t.Fatalf("open %s in the browser: %v", nbPath, err)
	}
	return ctx
}

// newBrowser starts headless Chromium, closed at the end of the test, with
// the default flags and extra ones.
func newBrowser(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(labtest.Chromium(t, context.Background(), extra...), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// firstCell is the editor of the first cell of the notebook on show.
const firstCell = `.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell:first-child .cm-content`

// typeAtEnd types text at the end of the first cell's first line, as a
// person would.
func typeAtEnd(t *testing.T, ctx context.Context, text string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(firstCell)), chromedp.KeyEvent(kb.End), chromedp.KeyEvent(text)); err != nil {
		screenshot(t, ctx)
		t.Fatalf("type %q in the first cell: %v", text, err)
	}
}

// screenshot saves what the browser shows, for a failing test.
func screenshot(t *testing.T, ctx context.Context) {
	if png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot()); err == nil {
		shot := filepath.Join(os.TempDir(), strings.ReplaceAll(t.Name(), "/", "_")+".png")
		_ = os.WriteFile(shot, png, 0o644)
		t.Logf("screenshot: %s", shot)
	}
}

// livePath is a fresh notebook path, so that repeated runs never meet a
// room left by an earlier one.
func livePath(name string) string {
	return fmt.Sprintf("live/%s-%d.ipynb", name, time.Now().UnixNano())
}

// waitForText waits until the notebook shown in the page contains text.
func waitForText(t *testing.T, ctx context.Context, text string) {
	t.Helper()
	js := fmt.Sprintf(`(document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook')?.innerText || '').includes(%q)`, text)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('.jp-Notebook')?.innerText || ''`))
		screenshot(t, ctx)
		t.Fatalf("the page never showed %q; it shows:\n%s", text, page)
	}
}

// A cell the agent inserts appears in the open notebook, and an edit typed
// in the page reaches the agent's next read without a save.
func TestBrowserSeesAgentEdits(t *testing.T) {
	cs := session(t)
	nb := livePath("see")
	codeNotebook(t, nb, "first = 1")
	ctx := browser(t, nb)

	labtest.Call[insertOut](t, cs, "insert_cell", map[string]any{"path": nb, "source": "agent_was_here = 42"})
	waitForText(t, ctx, "agent_was_here = 42")
	// The agent is listed among the online collaborators, on this notebook.
	presence := `(document.querySelector('.jp-CollaboratorsPanel')?.innerText || '').includes('AI agent')`
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-id="jp-collaboration-panel"]`))); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](presence, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		screenshot(t, ctx)
		t.Fatalf("the agent is not among the online collaborators: %v", err)
	}
	labtest.Call[map[string]any](t, cs, "edit_cell", map[string]any{"path": nb, "cell_id": "c0", "old_text": "first = 1", "new_text": "first = 2"})
	waitForText(t, ctx, "first = 2")

	// The person types at the end of the first cell.
	typeAtEnd(t, ctx, "  # typed by a person")
	waitForText(t, ctx, "typed by a person")
	readUntil(t, cs, nb, "c0", "first = 2  # typed by a person")
}

// readUntil reads a cell through the agent until its source is want: the
// person's keystrokes reach the room, then the sidecar, asynchronously.
func readUntil(t *testing.T, cs *mcp.ClientSession, path, cellID, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		cell := labtest.Call[cellView](t, cs, "read_cell", map[string]any{"path": path, "cell_id": cellID})
		if cell.Source == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent reads %q, want %q", cell.Source, want)
		}
		time.Sleep(200 * time.Millisecond) // polling a condition with a deadline
	}
}

// Output lines show up in the page one by one while the tool call is still
// running: the cell prints a line and waits for the test, which lets it go
// on only once the page shows that line.
func TestBrowserShowsOutputsLive(t *testing.T) {
	cs := session(t)
	nb := livePath("stream")
	g := newGate(t)
	codeNotebook(t, nb, g.code("tick", 3))
	ctx := browser(t, nb)
	done := make(chan *mcp.CallToolResult, 1)
	go func() {
		res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "execute_cell", Arguments: map[string]any{"path": nb, "cell_id": "c0", "timeout": 120}})
		if err != nil {
			res = &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: err.Error()}}}
		}
		done <- res
	}()
	for i := range 3 {
		waitForText(t, ctx, fmt.Sprintf("tick %d", i))
		select {
		case res := <-done:
			t.Fatalf("execute_cell returned before tick %d was let through: %s", i, labtest.ResultText(res))
		default:
		}
		g.open(t, i)
	}
	if res := <-done; res.IsError || !strings.Contains(labtest.ResultText(res), "tick 2") {
		t.Fatalf("execute_cell: %s", labtest.ResultText(res))
	}
}

// A person types in a cell while the agent inserts cells, edits another
// cell and edits the person's own cell: every edit survives in the page, in
// the agent's view and on disk. The two sides are interleaved so that they
// overlap by construction: each agent call is made right after the person's
// keystrokes, and the person types on right after the call returns, neither
// waiting for the other's edit to arrive.
func TestBrowserConcurrentEditing(t *testing.T) {
	cs := session(t)
	nb := livePath("both")
	codeNotebook(t, nb, "person_cell = 0", "agent_cell = 0")
	ctx := browser(t, nb)

	// Keys go to the focused editor: chromedp's SendKeys reads the node's
	// attributes unlocked while DOM events update them (a data race under
	// -race whenever the page changes meanwhile, as it does here).
	personTypes := func(text string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.KeyEvent(text)); err != nil {
			t.Fatal(err)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(firstCell)), chromedp.KeyEvent(kb.End)); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		personTypes(fmt.Sprintf("\nperson_line_%d = %d", i+1, i+1))
		labtest.Call[insertOut](t, cs, "insert_cell", map[string]any{"path": nb, "source": fmt.Sprintf("agent_insert_%d = %d", i, i)})
		labtest.Call[map[string]any](t, cs, "edit_cell", map[string]any{"path": nb, "cell_id": "c1", "source": fmt.Sprintf("agent_cell = %d", i+1)})
		if i == 0 { // the agent edits the head of the cell the person is typing in
			labtest.Call[map[string]any](t, cs, "edit_cell", map[string]any{"path": nb, "cell_id": "c0", "old_text": "person_cell = 0", "new_text": "person_cell = 10"})
		}
	}
	for _, want := range []string{"person_cell = 10", "person_line_3 = 3", "agent_insert_2 = 2", "agent_cell = 3"} {
		waitForText(t, ctx, want)
	}
	want := "person_cell = 10\nperson_line_1 = 1\nperson_line_2 = 2\nperson_line_3 = 3"
	readUntil(t, cs, nb, "c0", want)
	r := labtest.Call[readOut](t, cs, "read_notebook", map[string]any{"path": nb})
	if r.TotalCells != 5 || r.Cells[1].Source != "agent_cell = 3" {
		t.Fatalf("agent's view: %+v", r.Cells)
	}
	// An agent edit saves the room: the file then holds everyone's edits.
	labtest.Call[map[string]any](t, cs, "edit_cell", map[string]any{"path": nb, "cell_id": "c1", "source": "agent_cell = 4"})
	savedFile(t, shared, nb, "holds everyone's edits", func(disk string) bool {
		for _, s := range []string{"person_cell = 10", "person_line_3 = 3", "agent_insert_2 = 2", "agent_cell = 4"} {
			if !strings.Contains(disk, s) {
				return false
			}
		}
		return true
	})
	validateNotebook(t, nb)
}

// The agent rewrites the first and last lines of a cell while the person's
// cursor is at the end of the line between them: the sidecar writes a
// splice per changed line, so the line under the cursor is not deleted and
// written back, the cursor stays, and what the person types next lands
// there.
func TestBrowserAgentEditsAroundPersonsLine(t *testing.T) {
	cs := session(t)
	nb := livePath("around")
	codeNotebook(t, nb, "first = 0\nmiddle = 0\nlast = 0")
	ctx := browser(t, nb)
	keys := []chromedp.Action[chromedp.Void]{chromedp.Click(chromedp.CSS(firstCell))}
	for _, k := range []string{kb.ArrowUp, kb.ArrowUp, kb.ArrowUp, kb.ArrowDown, kb.End} {
		keys = append(keys, chromedp.KeyEvent(k))
	}
	if err := chromedp.Do(ctx, keys...); err != nil {
		t.Fatal(err)
	}
	labtest.Call[map[string]any](t, cs, "edit_cell", map[string]any{"path": nb, "cell_id": "c0", "source": "first = 1\nmiddle = 0\nlast = 1"})
	waitForText(t, ctx, "last = 1")
	if err := chromedp.Do(ctx, chromedp.KeyEvent(" # mine")); err != nil {
		t.Fatal(err)
	}
	readUntil(t, cs, nb, "c0", "first = 1\nmiddle = 0 # mine\nlast = 1")
}

// Code the person runs in the page defines variables the agent's code sees:
// both use the notebook's one kernel.
func TestBrowserKernelIsShared(t *testing.T) {
	cs := session(t)
	nb := livePath("kernel")
	codeNotebook(t, nb, "secret = 4242")
	ctx := browser(t, nb)
	// The person runs the cell with Shift+Enter, on the kernel JupyterLab
	// started for the notebook, once the page is connected to it.
	kernelReady := `(() => { for (const w of window.jupyterapp.shell.widgets('main')) {
		const k = w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
		if (k && k.connectionStatus === 'connected' && k.status === 'idle') return true; } return false; })()`
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](kernelReady, chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		screenshot(t, ctx)
		t.Fatalf("the page's kernel never became ready: %v", err)
	}
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(firstCell)),
		chromedp.KeyEvent("\r", chromedp.KeyModifiers(chromedp.ModifierShift)),
	); err != nil {
		t.Fatal(err)
	}
	waitForText(t, ctx, "[1]:")
	res := labtest.Call[execOut](t, cs, "execute_code", map[string]any{"path": nb, "code": "print(secret)"})
	if res.Status != "ok" {
		t.Fatalf("execute_code = %+v", res)
	}
	r, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "get_execution", Arguments: map[string]any{"execution_id": res.ExecutionID}})
	if err != nil || !strings.Contains(labtest.ResultText(r), "4242") {
		t.Fatalf("the agent does not see the person's variable: %v %q", err, labtest.ResultText(r))
	}
}

// The agent's entry in JupyterLab's collaborators panel lists the notebooks
// it works on, expandable like a person's, the one it is on marked.
func TestBrowserCollaboratorsListAgentNotebooks(t *testing.T) {
	cs := session(t)
	a, b := livePath("panel-a"), livePath("panel-b")
	codeNotebook(t, a, "a = 1")
	codeNotebook(t, b, "b = 1")
	ctx := browser(t, a)
	labtest.Call[readOut](t, cs, "read_notebook", map[string]any{"path": a})
	labtest.Call[readOut](t, cs, "read_notebook", map[string]any{"path": b}) // the agent is on b
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-id="jp-collaboration-panel"]`))); err != nil {
		t.Fatal(err)
	}
	entry := `[...document.querySelectorAll('.jp-CollaboratorsPanel .jp-Collaborator')].find((c) => c.innerText.includes('AI agent'))`
	// What the entry lists once expanded: every file, and the marked one.
	listing := `(() => { const e = ` + entry + `; const files = e && e.querySelector('.jp-CollaboratorFiles');
		if (!files || files.style.display === 'none') return null;
		const titles = (sel) => [...files.querySelectorAll(sel)].map((s) => s.title);
		return {all: titles('.jp-DirListing-itemText'), on: titles('.jp-mod-running .jp-DirListing-itemText')}; })()`
	fail := func(what string) {
		t.Helper()
		got, _ := chromedp.Run(ctx, chromedp.Evaluate[map[string]any](listing))
		screenshot(t, ctx)
		t.Fatalf("%s; the agent's entry lists %v", what, got)
	}
	expandable := `!!(` + entry + `)?.querySelector('.jp-ClickableCollaborator')`
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expandable, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		fail("the agent's entry lists no notebook to expand")
	}
	// The person expands the entry.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void]((entry)+`.querySelector('.jp-ClickableCollaborator').click()`)); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`(() => { const l = %s; return !!l && l.all.includes(%q) && l.all.includes(%q) && l.on.length === 1 && l.on[0] === %q; })()`, listing, a, b, b)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](want, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		fail(fmt.Sprintf("want %s and %s listed, %s marked", a, b, b))
	}
}

// A person's open notebook renders only the cells in view (JupyterLab's
// "full" windowing, the default this package's lab settings give): cells
// an agent adds out of view cost the page no editor until scrolled to,
// which keeps the page up with several agents at once.
func TestBrowserRendersOnlyCellsInView(t *testing.T) {
	cs := session(t)
	nb := livePath("window")
	var sources []string
	for i := range 200 {
		sources = append(sources, fmt.Sprintf("cell_%d = %d", i, i))
	}
	codeNotebook(t, nb, sources...)
	ctx := browser(t, nb)

	mode := `[...jupyterapp.shell.widgets('main')].find(w => w.content?.notebookConfig).content.notebookConfig.windowingMode`
	if got, err := chromedp.Run(ctx, chromedp.Evaluate[string](mode)); err != nil || got != "full" {
		t.Fatalf("the page's windowing mode is %q (%v), want full", got, err)
	}
	labtest.Call[insertOut](t, cs, "insert_cell", map[string]any{"path": nb, "source": "agent_far_below = 1", "index": -1})
	// The page's model holds the agent's cell (the room delivered it) while
	// its DOM holds only the cells near the view, not the agent's.
	shown := `(() => {
		const m = [...jupyterapp.shell.widgets('main')].find(w => w.content?.model?.sharedModel).content.model.sharedModel;
		const dom = document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell').length;
		return m.cells.length === 201 && m.cells[200].getSource() === 'agent_far_below = 1' ? dom : 0;
	})()`
	dom, err := chromedp.Run(ctx, chromedp.Poll[int](shown, chromedp.WithPollingTimeout(60*time.Second)))
	if err != nil {
		screenshot(t, ctx)
		t.Fatalf("the page never held the agent's cell: %v", err)
	}
	if dom >= 100 {
		t.Fatalf("the page renders %d of 201 cells, want only those near the view", dom)
	}
	if body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('.jp-Notebook')?.innerText || ''`)); strings.Contains(body, "agent_far_below") {
		t.Fatal("the page rendered the agent's cell far out of view")
	}
}
