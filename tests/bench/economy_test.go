package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/sidecar/yjs/yproto"
	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

// economyReps is how many times each operation is made on each side.
const economyReps = 3

// economyQuiet is how long the watching tab's room socket must carry no
// document update for an operation to be over: longer than the server's
// autosave delay (document_save_delay, 1 s), whose save marks the
// document's state, and the sidecar's background save.
const economyQuiet = 2 * time.Second

// BenchmarkUpdateEconomy prints, per notebook operation, the Yjs updates
// (and their bytes) that an open JupyterLab tab receives on the room's
// websocket when an agent makes it through /mcp, next to the same operation
// made by a person's JupyterLab tab in the same room through JupyterLab's
// own notebook model and commands. The watching tab's websocket frames are
// read through the DevTools protocol (Network.webSocketFrameReceived).
func BenchmarkUpdateEconomy(b *testing.B) {
	lab, cs := benchLab(b)
	const path = "economy.ipynb"
	writeNotebookOf(b, lab, path, 8)
	call := func(name string, args map[string]any) json.RawMessage {
		args["path"] = path
		res, err := cs.CallTool(b.Context(), &mcp.CallToolParams{Name: name, Arguments: args})
		if err != nil || res.IsError {
			b.Fatalf("%s: %v %s", name, err, labtest.ResultText(res))
		}
		data, _ := json.Marshal(res.StructuredContent)
		return data
	}
	// Two browsers: a tab in the background of one browser is throttled.
	watch := openNotebookTab(b, lab, path, "watch")
	frames := watchRoom(b, watch)
	if err := chromedp.Do(watch, chromedp.Reload(), chromedp.WaitVisible(`.jp-NotebookPanel .jp-Cell .cm-content`)); err != nil {
		b.Fatal(err) // reloaded so that the room's socket opens while listened to
	}
	person := openNotebookTab(b, lab, path, "person")
	call("read_notebook", map[string]any{}) // the sidecar joins the room
	personJS := func(js string) string {
		out, err := chromedp.Run(person, chromedp.Evaluate[string](`(async () => { const panel = `+notebookPanelJS+`;
			const nb = panel.content, m = nb.model.sharedModel, cellAt = id => m.cells.findIndex(c => c.id === id);
			`+js+` })()`, chromedp.EvalAwaitPromise))
		if err != nil {
			b.Fatalf("in the person's tab: %v\n%s", err, js)
		}
		return out
	}
	// Both sides run a cell once first: the kernel starts, and each side's
	// cell has outputs to replace.
	const printing = "import time\nfor i in range(10):\n    print(i, flush=True)\n    time.sleep(0.1)"
	var ourRun, theirRun string
	{
		var c struct {
			CellID string `json:"cell_id"`
		}
		_ = json.Unmarshal(call("insert_cell", map[string]any{"source": printing}), &c)
		ourRun = c.CellID
		call("execute_cell", map[string]any{"cell_id": ourRun, "timeout": 60})
		theirRun = personJS(`return m.insertCell(m.cells.length, {cell_type: 'code', source: ` + jsString(printing) + `}).id`)
		personJS(runCellJS(theirRun))
		frames.settle(b, watch, cellRanJS(theirRun, 0))
	}

	type op struct {
		name        string
		ours, their func(rep int) string // the operation; returns a condition the watching tab then meets
	}
	var oursIns, theirIns []string // cells inserted by each side, for the operations after insert
	var oursCleared, theirCleared = 1, 2
	ops := []op{
		{"insert a cell", func(rep int) string {
			var c struct {
				CellID string `json:"cell_id"`
			}
			src := fmt.Sprintf("ours_%d = 1", rep)
			_ = json.Unmarshal(call("insert_cell", map[string]any{"source": src, "index": 1}), &c)
			oursIns = append(oursIns, c.CellID)
			return hasSourceJS(c.CellID, src)
		}, func(rep int) string {
			src := fmt.Sprintf("theirs_%d = 1", rep)
			id := personJS(`return m.insertCell(1, {cell_type: 'code', source: ` + jsString(src) + `}).id`)
			theirIns = append(theirIns, id)
			return hasSourceJS(id, src)
		}},
		{"edit by substring", func(rep int) string {
			id := oursIns[rep]
			call("edit_cell", map[string]any{"cell_id": id, "old_text": "= 1", "new_text": "= 2"})
			return hasSourceJS(id, fmt.Sprintf("ours_%d = 2", rep))
		}, func(rep int) string {
			id := theirIns[rep]
			personJS(`const c = m.cells[cellAt(` + jsString(id) + `)], at = c.source.indexOf('= 1'); c.updateSource(at, at + 3, '= 2'); return ''`)
			return hasSourceJS(id, fmt.Sprintf("theirs_%d = 2", rep))
		}},
		{"edit whole source", func(rep int) string {
			id, src := oursIns[rep], fmt.Sprintf("ours_%d = 2\nprint(ours_%d)", rep, rep)
			call("edit_cell", map[string]any{"cell_id": id, "source": src})
			return hasSourceJS(id, src)
		}, func(rep int) string {
			id, src := theirIns[rep], fmt.Sprintf("theirs_%d = 2\nprint(theirs_%d)", rep, rep)
			personJS(`m.cells[cellAt(` + jsString(id) + `)].setSource(` + jsString(src) + `); return ''`)
			return hasSourceJS(id, src)
		}},
		{"move a cell", func(rep int) string {
			id := oursIns[rep]
			call("move_cell", map[string]any{"cell_id": id, "to_index": 0})
			return fmt.Sprintf(`cells[0]?.id === %q`, id)
		}, func(rep int) string {
			id := theirIns[rep]
			personJS(`m.moveCell(cellAt(` + jsString(id) + `), 0); return ''`)
			return fmt.Sprintf(`cells[0]?.id === %q`, id)
		}},
		{"clear a cell's outputs", func(rep int) string {
			id := fmt.Sprintf("c%d", oursCleared+2*rep)
			call("clear_outputs", map[string]any{"cell_ids": []string{id}})
			return clearedJS(id)
		}, func(rep int) string {
			id := fmt.Sprintf("c%d", theirCleared+2*rep)
			personJS(`nb.activeCellIndex = nb.widgets.findIndex(w => w.model.id === ` + jsString(id) + `);
				await jupyterapp.commands.execute('notebook:clear-cell-output'); return ''`)
			return clearedJS(id)
		}},
		{"delete a cell", func(rep int) string {
			id := oursIns[rep]
			call("delete_cells", map[string]any{"cell_ids": []string{id}})
			return goneJS(id)
		}, func(rep int) string {
			id := theirIns[rep]
			personJS(`m.deleteCell(cellAt(` + jsString(id) + `)); return ''`)
			return goneJS(id)
		}},
		{"run a cell printing 10 lines in 1 s", func(int) string {
			n := executionCount(b, watch, ourRun)
			call("execute_cell", map[string]any{"cell_id": ourRun, "timeout": 60})
			return cellRanJS(ourRun, n)
		}, func(int) string {
			n := executionCount(b, watch, theirRun)
			personJS(runCellJS(theirRun))
			return cellRanJS(theirRun, n)
		}},
	}

	for range b.N {
		type tally struct{ ours, theirs []roomTraffic }
		results := make([]tally, len(ops))
		for rep := range economyReps {
			for i, o := range ops {
				results[i].ours = append(results[i].ours, frames.measure(b, watch, func() string { return o.ours(rep) }))
				results[i].theirs = append(results[i].theirs, frames.measure(b, watch, func() string { return o.their(rep) }))
			}
		}
		fmt.Printf("\nWhat an open JupyterLab tab receives per operation (median of %d), ours (agent via /mcp) vs a person's JupyterLab tab\n", economyReps)
		fmt.Printf("%-36s %16s %16s %7s %7s %22s\n", "operation", "ours upd / bytes", "JupyterLab's", "upd ×", "bytes ×", "awareness ours / JL's")
		var goals []string
		for i, o := range ops {
			ours, theirs := medianTraffic(results[i].ours), medianTraffic(results[i].theirs)
			fmt.Printf("%-36s %7d / %6d %7d / %6d %7.2f %7.2f %4d, %5d B / %2d, %4d B\n", o.name, ours.updates, ours.bytes, theirs.updates, theirs.bytes,
				float64(ours.updates)/float64(max(theirs.updates, 1)), float64(ours.bytes)/float64(max(theirs.bytes, 1)),
				ours.awareness, ours.awarenessBytes, theirs.awareness, theirs.awarenessBytes)
			goals = append(goals, labtest.GoalLine("room updates an open tab receives, "+o.name+", ours vs JupyterLab's", "updates", float64(ours.updates), float64(theirs.updates), "<=", 1),
				labtest.GoalLine("room bytes an open tab receives, "+o.name+", ours vs JupyterLab's", "bytes", float64(ours.bytes), float64(theirs.bytes), "<=", 1))
		}
		for _, g := range goals {
			fmt.Println(g)
		}
		fmt.Println()
	}
}

// roomTraffic is what a tab received on a notebook room's socket.
type roomTraffic struct {
	updates, bytes            int // document updates (sync step 2 and update messages) and their frames' bytes
	awareness, awarenessBytes int // awareness messages and their bytes
}

func medianTraffic(ts []roomTraffic) roomTraffic {
	pick := func(f func(roomTraffic) int) int {
		v := make([]int, len(ts))
		for i, t := range ts {
			v[i] = f(t)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return roomTraffic{pick(func(t roomTraffic) int { return t.updates }), pick(func(t roomTraffic) int { return t.bytes }),
		pick(func(t roomTraffic) int { return t.awareness }), pick(func(t roomTraffic) int { return t.awarenessBytes })}
}

// roomFrames records the frames a tab receives on its notebook rooms'
// websockets.
type roomFrames struct {
	mu      sync.Mutex
	sockets map[network.RequestID]bool
	log     []roomFrame
}

type roomFrame struct {
	at     time.Time
	update bool // a document update; else awareness or another message
	aware  bool
	bytes  int
}

// watchRoom listens to the room sockets the tab opens from now on.
func watchRoom(b *testing.B, tab context.Context) *roomFrames {
	f := &roomFrames{sockets: map[network.RequestID]bool{}}
	if err := chromedp.Listen(tab, func(ev any) {
		f.mu.Lock()
		defer f.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventWebSocketCreated:
			if strings.Contains(e.URL, "/api/collaboration/room/json:notebook:") {
				f.sockets[e.RequestID] = true
			}
		case *network.EventWebSocketFrameReceived:
			if !f.sockets[e.RequestID] || e.Response == nil || e.Response.Opcode != 2 {
				return
			}
			m, err := yproto.Decode(e.Response.PayloadData)
			if err != nil {
				return
			}
			f.log = append(f.log, roomFrame{at: time.Now(), bytes: len(e.Response.PayloadData),
				update: m.Type == yproto.MessageSync && (m.SyncType == yproto.SyncUpdate || m.SyncType == yproto.SyncStep2),
				aware:  m.Type == yproto.MessageAwareness})
		}
	}); err != nil {
		b.Fatal(err)
	}
	return f
}

// measure makes an operation and counts what the tab received from its
// start until the tab shows its effect (the condition op returns) and the
// room has then been quiet for economyQuiet.
func (f *roomFrames) measure(b *testing.B, tab context.Context, op func() string) roomTraffic {
	f.mu.Lock()
	from := len(f.log)
	f.mu.Unlock()
	f.settle(b, tab, op())
	f.mu.Lock()
	defer f.mu.Unlock()
	var t roomTraffic
	for _, fr := range f.log[from:] {
		switch {
		case fr.update:
			t.updates++
			t.bytes += fr.bytes
		case fr.aware:
			t.awareness++
			t.awarenessBytes += fr.bytes
		}
	}
	return t
}

// settle waits until the tab's notebook meets cond (a JS expression over
// `cells`, its cells as JSON), then until no update has come for
// economyQuiet.
func (f *roomFrames) settle(b *testing.B, tab context.Context, cond string) {
	js := `(() => { const cells = ` + notebookPanelJS + `.context.model.sharedModel.toJSON().cells; return ` + cond + ` })()`
	if _, err := chromedp.Run(tab, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(time.Minute))); err != nil {
		b.Fatalf("the watching tab never showed %s: %v", cond, err)
	}
	for deadline := time.Now().Add(time.Minute); ; {
		f.mu.Lock()
		last := time.Time{}
		for _, fr := range f.log {
			if fr.update {
				last = fr.at
			}
		}
		f.mu.Unlock()
		if time.Since(last) >= economyQuiet {
			return
		}
		if time.Now().After(deadline) {
			b.Fatal("the room never went quiet")
		}
		time.Sleep(100 * time.Millisecond) // polling the frames received, with a deadline
	}
}

// openNotebookTab opens the notebook in JupyterLab in a browser of its own,
// in a workspace of its own, and clicks into it: JupyterLab's notebook
// commands act on the notebook that has the focus.
func openNotebookTab(b *testing.B, lab *labtest.Lab, path, workspace string) context.Context {
	tab := labtest.Chromium(b, b.Context())
	url := fmt.Sprintf("%slab/workspaces/%s/tree/%s?token=%s", lab.URL, workspace, path, lab.Token)
	if err := chromedp.Do(tab, chromedp.Navigate(url), chromedp.WaitVisible(`.jp-NotebookPanel .jp-Cell .cm-content`),
		chromedp.Click(`.jp-NotebookPanel .jp-Cell .jp-InputPrompt`)); err != nil {
		b.Fatalf("open %s in the browser: %v", path, err)
	}
	return tab
}

// notebookPanelJS is the tab's notebook panel (its only one; the shell's
// current widget is null in a window without focus).
const notebookPanelJS = `[...jupyterapp.shell.widgets('main')].find(w => w.content?.model?.sharedModel)`

func jsString(s string) string {
	data, _ := json.Marshal(s)
	return string(data)
}

func hasSourceJS(id, src string) string {
	return fmt.Sprintf(`cells.some(c => c.id === %q && (Array.isArray(c.source) ? c.source.join('') : c.source) === %s)`, id, jsString(src))
}

func goneJS(id string) string { return fmt.Sprintf(`!cells.some(c => c.id === %q)`, id) }

func clearedJS(id string) string {
	return fmt.Sprintf(`cells.some(c => c.id === %q && c.outputs.length === 0)`, id)
}

// cellRanJS: a run of the cell after the one counted before ended, its
// last line shown.
func cellRanJS(id string, before int) string {
	return fmt.Sprintf(`cells.some(c => c.id === %q && c.execution_count > %d && JSON.stringify(c.outputs).includes('9\\n'))`, id, before)
}

// executionCount is the cell's execution count in the tab, 0 if none.
func executionCount(b *testing.B, tab context.Context, id string) int {
	n, err := chromedp.Run(tab, chromedp.Evaluate[int](fmt.Sprintf(`%s.context.model.sharedModel.toJSON().cells.find(c => c.id === %q)?.execution_count ?? 0`, notebookPanelJS, id)))
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// runCellJS runs the cell as the Run button does, and waits for its end.
func runCellJS(id string) string {
	return `nb.activeCellIndex = nb.widgets.findIndex(w => w.model.id === ` + jsString(id) + `);
		await jupyterapp.commands.execute('notebook:run-cell'); return ''`
}
