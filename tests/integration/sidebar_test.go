package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

// sidebarItem is the sidebar's entry for a change.
func sidebarItem(id int) string {
	return fmt.Sprintf(`.jp-McpChanges-item[data-change-id="%d"]`, id)
}

// The "Agent changes" sidebar lists the agent's changes to the open
// notebook as they happen, newest first with their diffs; clicking one
// highlights its cell; Revert undoes exactly that change — a line the
// person typed meanwhile into the same cell stays — "Revert all since"
// (once confirmed) that one and the session's later ones; a clash is shown
// and changes nothing.
func TestBrowserSidebarRevert(t *testing.T) {
	if _, err := os.Stat(filepath.Join(labtest.RepoRoot(), "jupyter_config", "labextension", "dist", "package.json")); err != nil {
		t.Fatal("the sidebar extension is not built: run `make labextension` (make venv and make test do)")
	}
	agent := session(t)
	nb := livePath("sidebar")
	codeNotebook(t, nb, "a = 1", "b = 2", "c = 3")
	ctx := browser(t, nb)
	wait := func(js, what string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			list, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('.jp-McpChanges')?.innerText || 'no sidebar'`))
			screenshot(t, ctx)
			t.Fatalf("%s: %v; the sidebar shows:\n%s", what, err, list)
		}
	}
	click := func(sel string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
			screenshot(t, ctx)
			t.Fatalf("click %s: %v", sel, err)
		}
	}
	click(`[data-id="jupyter-mcp-sidecar-changes"]`)
	wait(`(document.querySelector('.jp-McpChanges-path')?.innerText || '') === `+fmt.Sprintf("%q", nb), "the sidebar follows the open notebook")

	// Each change appears while the page stays open.
	labtest.Call[map[string]any](t, agent, "edit_cell", map[string]any{"path": nb, "cell_id": "c0", "source": "a = 10"})
	wait(fmt.Sprintf(`!!document.querySelector('%s')`, sidebarItem(1)), "change 1 is listed")
	labtest.Call[map[string]any](t, agent, "edit_cell", map[string]any{"path": nb, "cell_id": "c1", "source": "b = 20"})
	labtest.Call[map[string]any](t, agent, "edit_cell", map[string]any{"path": nb, "cell_id": "c2", "source": "c = 30"})
	wait(`[...document.querySelectorAll('.jp-McpChanges-item')].map(e => e.dataset.changeId).join() === '3,2,1'`, "changes 3, 2, 1 are listed newest first")
	item2 := sidebarItem(2)
	wait(fmt.Sprintf(`(() => { const i = document.querySelector('%s'); return !!i && i.innerText.includes('edit_cell') && i.innerText.includes('edit cell 2') &&
		i.querySelector('.jp-McpChanges-add')?.textContent.includes('b = 20') && i.querySelector('.jp-McpChanges-del')?.textContent.includes('b = 2') })()`, item2),
		"change 2 shows its tool, cell and colored diff")

	// Clicking change 2 highlights the cell it edited, and only that one.
	click(item2)
	wait(`[...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell')].map(c => c.classList.contains('jp-McpChanges-highlighted')).join() === 'false,true,false'`,
		"change 2's cell is highlighted")

	// The person adds a line of their own to the cell change 2 edited.
	secondCell := `.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell:nth-child(2) .cm-content`
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(secondCell)), chromedp.KeyEvent(kb.End), chromedp.KeyEvent(kb.Enter), chromedp.KeyEvent("# person")); err != nil {
		screenshot(t, ctx)
		t.Fatalf("type in the second cell: %v", err)
	}
	eventually(t, "the person's line reaches the notebook", func() bool {
		return sources(labtest.Call[readOut](t, agent, "read_notebook", map[string]any{"path": nb})) == "a = 10|b = 20\n# person|c = 30"
	})

	// Revert undoes exactly change 2: the person's line stays.
	click(item2 + ` .jp-McpChanges-revert`)
	wait(fmt.Sprintf(`(() => { const i = document.querySelector('%s'); return !!i && i.classList.contains('jp-mod-undone') && !i.querySelector('button') })()`, item2),
		"change 2 is shown reverted, without buttons")
	r := labtest.Call[readOut](t, agent, "read_notebook", map[string]any{"path": nb})
	if got := sources(r); got != "a = 10|b = 2\n# person|c = 30" {
		t.Fatalf("after reverting change 2 from the sidebar, read_notebook shows %q", got)
	}

	// "Revert all since" change 3: it and the session's later change 4.
	labtest.Call[map[string]any](t, agent, "edit_cell", map[string]any{"path": nb, "cell_id": "c2", "source": "c = 40"})
	wait(fmt.Sprintf(`!!document.querySelector('%s')`, sidebarItem(4)), "change 4 is listed")
	// It asks first, naming how many changes go; Cancel leaves all as is.
	click(sidebarItem(3) + ` .jp-McpChanges-revert-since`)
	wait(fmt.Sprintf(`document.querySelector('%s .jp-McpChanges-confirm')?.innerText.includes('Revert #3 and the 1 later change of this session?')`, sidebarItem(3)),
		"Revert all since asks to confirm, with the count")
	click(sidebarItem(3) + ` .jp-McpChanges-confirm-no`)
	wait(fmt.Sprintf(`!document.querySelector('%s .jp-McpChanges-confirm')`, sidebarItem(3)), "Cancel closes the question")
	if got := sources(labtest.Call[readOut](t, agent, "read_notebook", map[string]any{"path": nb})); got != "a = 10|b = 2\n# person|c = 40" {
		t.Fatalf("after Cancel, read_notebook shows %q", got)
	}
	click(sidebarItem(3) + ` .jp-McpChanges-revert-since`)
	click(sidebarItem(3) + ` .jp-McpChanges-confirm-yes`)
	wait(fmt.Sprintf(`['%s', '%s'].every(s => document.querySelector(s)?.classList.contains('jp-mod-undone'))`, sidebarItem(3), sidebarItem(4)),
		"changes 3 and 4 are shown reverted")
	r = labtest.Call[readOut](t, agent, "read_notebook", map[string]any{"path": nb})
	if got := sources(r); got != "a = 10|b = 2\n# person|c = 3" {
		t.Fatalf("after reverting all since change 3, read_notebook shows %q", got)
	}

	// Someone rewrites the line change 1 wrote: its Revert is refused,
	// the page says why, and nothing changes.
	other := session(t)
	labtest.Call[map[string]any](t, other, "edit_cell", map[string]any{"path": nb, "cell_id": "c0", "source": "a = 11"})
	wait(fmt.Sprintf(`!!document.querySelector('%s')`, sidebarItem(5)), "change 5 is listed")
	click(sidebarItem(1) + ` .jp-McpChanges-revert`)
	wait(`(() => { const e = document.querySelector('.jp-McpChanges-error'); return !!e && !e.hidden && e.innerText.includes('Revert change 1 failed') && e.innerText.includes('now read "a = 11"') })()`,
		"the clash is shown")
	r = labtest.Call[readOut](t, agent, "read_notebook", map[string]any{"path": nb})
	if got := sources(r); got != "a = 11|b = 2\n# person|c = 3" {
		t.Fatalf("after a refused revert, read_notebook shows %q", got)
	}
}

// sources is the cells' sources joined by "|".
func sources(r readOut) string {
	s := ""
	for i, c := range r.Cells {
		if i > 0 {
			s += "|"
		}
		s += c.Source
	}
	return s
}
