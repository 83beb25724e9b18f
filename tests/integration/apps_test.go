package integration

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

// MCP Apps (SEP-1865): the notebook view, a ui:// resource that the tools
// which pick or change a notebook name in _meta.ui.resourceUri.
const (
	appsExt     = "io.modelcontextprotocol/ui"
	appsMIME    = "text/html;profile=mcp-app"
	viewURI     = "ui://jupyter/notebook-view.html"
	viewMetaKey = "jupyter-mcp-sidecar/view"
)

var viewedTools = []string{"create_notebook", "use_notebook", "insert_cell", "edit_cell", "delete_cells", "move_cell", "clear_outputs", "execute_cell", "execute_cells"}

// appsSession is an MCP session whose client declares MCP Apps.
func appsSession(t *testing.T) *mcp.ClientSession {
	t.Helper()
	return connectApps(t, labtest.SessionProtocol, true)
}

// connectApps connects at protocol version ("": the client's newest,
// 2026-07-28, where the client declares its capabilities on every request),
// declaring MCP Apps or not.
func connectApps(t *testing.T, version string, apps bool) *mcp.ClientSession {
	t.Helper()
	caps := &mcp.ClientCapabilities{}
	if apps {
		caps.AddExtension(appsExt, map[string]any{"mimeTypes": []string{appsMIME}})
	}
	cs, err := shared.ConnectProtocol(t.Context(), "mcp", "token "+shared.Token, version, &mcp.ClientOptions{Capabilities: caps})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func listTools(t *testing.T, cs *mcp.ClientSession) map[string]*mcp.Tool {
	t.Helper()
	tools := map[string]*mcp.Tool{}
	for tool, err := range cs.Tools(t.Context(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		tools[tool.Name] = tool
	}
	return tools
}

// A client with MCP Apps sees the view on exactly the tools that pick or
// change a notebook, the app-only view_notebook, and the resource as an
// MCP Apps page; a client without it lists exactly the same tools minus all
// of that. Under 2026-07-28 too, where there is no session: the client's
// capabilities come with each request.
func TestAppsToolListAndResource(t *testing.T) {
	for _, version := range []string{labtest.SessionProtocol, ""} {
		t.Run("protocol "+cmp.Or(version, "2026-07-28"), func(t *testing.T) {
			appsToolListAndResource(t, connectApps(t, version, true), connectApps(t, version, false))
		})
	}
}

func appsToolListAndResource(t *testing.T, apps, plain *mcp.ClientSession) {
	if ext := apps.InitializeResult().Capabilities.Extensions; ext[appsExt] == nil {
		t.Errorf("the server does not advertise %s: %v", appsExt, ext)
	}
	withApps, without := listTools(t, apps), listTools(t, plain)
	for name, tool := range withApps {
		ui, _ := tool.Meta["ui"].(map[string]any)
		wantView := name == "view_notebook" || slices.Contains(viewedTools, name)
		if got := ui["resourceUri"]; wantView != (got == viewURI) {
			t.Errorf("%s: _meta.ui.resourceUri = %v, want the view: %v", name, got, wantView)
		}
		if slices.Contains(viewedTools, name) && tool.Meta["ui/resourceUri"] != viewURI {
			t.Errorf("%s: no legacy ui/resourceUri key: %v", name, tool.Meta)
		}
	}
	if vis, _ := withApps["view_notebook"].Meta["ui"].(map[string]any)["visibility"].([]any); len(vis) != 1 || vis[0] != "app" {
		t.Errorf("view_notebook is not app-only: %v", withApps["view_notebook"].Meta)
	}
	if _, ok := without["view_notebook"]; ok {
		t.Error("a client without MCP Apps lists view_notebook")
	}
	if len(without) != len(withApps)-1 {
		t.Errorf("without MCP Apps: %d tools, with: %d", len(without), len(withApps))
	}
	for name, tool := range without {
		if tool.Meta != nil {
			t.Errorf("%s lists _meta %v to a client without MCP Apps", name, tool.Meta)
		}
		// Otherwise the very same tool.
		other := *withApps[name]
		other.Meta = nil
		if !reflect.DeepEqual(jsonOf(t, tool), jsonOf(t, &other)) {
			t.Errorf("%s differs beyond _meta:\n%s\n%s", name, jsonOf(t, tool), jsonOf(t, &other))
		}
	}

	res, err := apps.ReadResource(t.Context(), &mcp.ReadResourceParams{URI: viewURI})
	if err != nil {
		t.Fatalf("resources/read %s: %v", viewURI, err)
	}
	if len(res.Contents) != 1 {
		t.Fatalf("resources/read: %d contents", len(res.Contents))
	}
	c := res.Contents[0]
	if c.URI != viewURI || c.MIMEType != appsMIME || !strings.HasPrefix(c.Text, "<!doctype html>") {
		t.Fatalf("resources/read: uri %q, mime %q, text %.40q", c.URI, c.MIMEType, c.Text)
	}
	// The page forbids any script but its own and any network access.
	for _, want := range []string{"script-src 'sha256-", "connect-src 'none'", "default-src 'none'"} {
		if !strings.Contains(c.Text, want) {
			t.Errorf("the page's CSP lacks %q", want)
		}
	}
	if ui, _ := c.Meta["ui"].(map[string]any); ui == nil {
		t.Errorf("the resource content has no _meta.ui: %v", c.Meta)
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Results carry the view's _meta (the notebook, the changed cells) only for
// a client with MCP Apps; others get the results they always got.
func TestAppsResultsUnchangedWithoutExtension(t *testing.T) {
	apps, plain := appsSession(t), session(t)
	nb := livePath("apps-results")
	codeNotebook(t, nb, "x = 1")
	call := func(cs *mcp.ClientSession, tool string, args map[string]any) *mcp.CallToolResult {
		t.Helper()
		res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: tool, Arguments: args})
		if err != nil || res.IsError {
			t.Fatalf("%s: %v %s", tool, err, labtest.ResultText(res))
		}
		return res
	}
	a, p := call(apps, "use_notebook", map[string]any{"path": nb}), call(plain, "use_notebook", map[string]any{"path": nb})
	if p.Meta != nil {
		t.Errorf("use_notebook without MCP Apps has _meta %v", p.Meta)
	}
	view, _ := a.Meta[viewMetaKey].(map[string]any)
	if view["path"] != nb || !strings.HasSuffix(fmt.Sprint(view["lab_url"]), "/lab/tree/"+nb) {
		t.Errorf("use_notebook with MCP Apps: _meta %v", a.Meta)
	}
	a.Meta = nil
	if jsonOf(t, a) != jsonOf(t, p) {
		t.Errorf("the results differ beyond _meta:\n%s\n%s", jsonOf(t, a), jsonOf(t, p))
	}
	// A change names the changed cell; without MCP Apps nothing is added.
	ins := call(apps, "insert_cell", map[string]any{"source": "y = 2"}) // the session's current notebook
	id := ins.StructuredContent.(map[string]any)["cell_id"]
	view, _ = ins.Meta[viewMetaKey].(map[string]any)
	if view["path"] != nb || fmt.Sprint(view["changed_cells"]) != fmt.Sprintf("[%v]", id) {
		t.Errorf("insert_cell with MCP Apps: _meta %v (new cell %v)", ins.Meta, id)
	}
	if res := call(plain, "insert_cell", map[string]any{"source": "z = 3"}); res.Meta != nil {
		t.Errorf("insert_cell without MCP Apps has _meta %v", res.Meta)
	}
	// A tool without a view adds nothing, with MCP Apps or not.
	if res := call(apps, "read_notebook", map[string]any{}); res.Meta != nil {
		t.Errorf("read_notebook has _meta %v", res.Meta)
	}
}

// ---- the view in a browser, hosted by the official SDK's AppBridge ----

var (
	hostBundleOnce sync.Once
	hostBundle     []byte
	hostBundleErr  error
)

// bundleHost bundles tests/apps/host.js with the pinned esbuild: the
// ext-apps host side and its dependencies in one browser script.
func bundleHost(t *testing.T) []byte {
	t.Helper()
	hostBundleOnce.Do(func() {
		dir := filepath.Join(labtest.RepoRoot(), "tests", "apps")
		esbuild := filepath.Join(dir, "node_modules", ".bin", "esbuild")
		if _, err := os.Stat(esbuild); err != nil {
			hostBundleErr = fmt.Errorf("%s is missing: run `make clients` (npm ci in tests/apps)", esbuild)
			return
		}
		out := filepath.Join(labsDir, "apps-host.js")
		cmd := exec.Command(esbuild, "host.js", "--bundle", "--format=iife", "--platform=browser", "--log-level=warning", "--outfile="+out)
		cmd.Dir = dir
		if msg, err := cmd.CombinedOutput(); err != nil {
			hostBundleErr = fmt.Errorf("esbuild: %v\n%s", err, msg)
			return
		}
		hostBundle, hostBundleErr = os.ReadFile(out)
	})
	if hostBundleErr != nil {
		t.Fatal(hostBundleErr)
	}
	return hostBundle
}

// appsHost serves the host page and relays the views' tool calls to the
// real <lab>/mcp on cs, as a chat client does with its own connection.
func appsHost(t *testing.T, cs *mcp.ClientSession) context.Context {
	t.Helper()
	bundle := bundleHost(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<!doctype html><html><head><meta charset="utf-8"><title>host</title></head><body><script src="/host.js"></script></body></html>`)
	})
	mux.HandleFunc("GET /host.js", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		_, _ = w.Write(bundle)
	})
	mux.HandleFunc("POST /call", func(w http.ResponseWriter, r *http.Request) {
		var params mcp.CallToolParams
		if err := json.NewDecoder(r.Body).Decode(&params); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		res, err := cs.CallTool(r.Context(), &params)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(res)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	ctx := newBrowser(t, chromedp.Flag("disable-features", "IsolateSandboxedIframes,site-per-process"), chromedp.Flag("disable-site-isolation-trials", true))
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`typeof window.mountView === "function"`, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("the host page never loaded the ext-apps bundle: %v", err)
	}
	return ctx
}

// mountView shows the view of one tool call in the host page, as the host
// does: the ui:// resource read over MCP, the call's arguments and result.
func mountView(t *testing.T, ctx context.Context, cs *mcp.ClientSession, frame string, args map[string]any, res *mcp.CallToolResult) {
	t.Helper()
	rr, err := cs.ReadResource(t.Context(), &mcp.ReadResourceParams{URI: viewURI})
	if err != nil {
		t.Fatal(err)
	}
	js := fmt.Sprintf(`window.mountView(%s, %s, %s, %s)`, jsonOf(t, frame), jsonOf(t, rr.Contents[0].Text), jsonOf(t, args), jsonOf(t, res))
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](js, chromedp.EvalAwaitPromise)); err != nil {
		t.Fatalf("mount the view: %v", err)
	}
}

// viewEval evaluates js in the view's frame, in an isolated world: the
// view's DOM without its globals. The frame is sandboxed at an opaque
// origin, so the host page itself cannot look inside.
func viewEval[T any](ctx context.Context, frame, js string) (T, error) {
	var out T
	tree, err := chromedp.Call(ctx, page.GetFrameTree, cdp.Empty{})
	if err != nil {
		return out, err
	}
	var id cdp.FrameID
	for _, child := range tree.FrameTree.ChildFrames {
		if child.Frame.Name == frame {
			id = child.Frame.ID
		}
	}
	if id == "" {
		return out, fmt.Errorf("no frame %q", frame)
	}
	world, err := chromedp.Call(ctx, page.CreateIsolatedWorld, page.CreateIsolatedWorldParams{FrameID: id, WorldName: "apps-test"})
	if err != nil {
		return out, err
	}
	byValue := true
	res, err := chromedp.Call(ctx, runtime.Evaluate, runtime.EvaluateParams{Expression: js, ContextID: world.ExecutionContextID, ReturnByValue: &byValue})
	if err != nil {
		return out, err
	}
	if res.ExceptionDetails != nil {
		return out, fmt.Errorf("%s", res.ExceptionDetails.Text)
	}
	if res.Result == nil || len(res.Result.Value) == 0 {
		return out, fmt.Errorf("no value")
	}
	return out, json.Unmarshal(res.Result.Value, &out)
}

// waitView waits until js, evaluated in the view, is true.
func waitView(t *testing.T, ctx context.Context, frame, js, what string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := viewEval[bool](ctx, frame, js)
		if err == nil && ok {
			return
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond) // polling a DOM condition with a deadline
	}
	text, _ := viewEval[string](ctx, frame, `document.body ? document.body.innerText : ""`)
	host, _ := chromedp.Run(ctx, chromedp.Evaluate[map[string]any](`window.host`))
	screenshot(t, ctx)
	t.Fatalf("the view never showed %s (%v); it shows:\n%s\nhost: %v", what, lastErr, text, host)
}

// A 4×3 PNG, so the test can check the image really decodes in the view.
func testPNG(t *testing.T) string {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 4, 3))
	for x := range 4 {
		for y := range 3 {
			img.Set(x, y, color.RGBA{200, 30, 30, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

// notebookOf writes a notebook of (cell type, source) pairs, with cell ids
// c0, c1, ... and optional outputs for code cells.
type testCell struct {
	typ, source string
	outputs     string // a JSON array, for code cells
}

func notebookOf(t *testing.T, rel string, cells ...testCell) {
	t.Helper()
	var parts []string
	for i, c := range cells {
		if c.typ == "markdown" {
			parts = append(parts, fmt.Sprintf(`{"cell_type":"markdown","id":"c%d","metadata":{},"source":%s}`, i, jsonOf(t, c.source)))
			continue
		}
		outs := c.outputs
		if outs == "" {
			outs = "[]"
		}
		parts = append(parts, fmt.Sprintf(`{"cell_type":"code","id":"c%d","metadata":{},"outputs":%s,"execution_count":null,"source":%s}`, i, outs, jsonOf(t, c.source)))
	}
	writeFile(t, rel, `{"cells":[`+strings.Join(parts, ",")+`],"metadata":{"kernelspec":{"name":"python3","display_name":"Python 3","language":"python"}},"nbformat":4,"nbformat_minor":5}`)
}

// The view in a real host (the ext-apps AppBridge, in Chromium): it shows
// the notebook's markdown, code, image, HTML and traceback, highlights the
// cells the call ran, follows the agent's next insert and run without
// reloading, opens the notebook in JupyterLab through the host, and never
// runs the notebook's own scripts.
func TestAppsViewInHost(t *testing.T) {
	cs := appsSession(t)
	ctx := appsHost(t, cs)
	nb := livePath("apps-view")
	// Scripts that report to the host page (and mark the view's DOM) if
	// they ever run.
	const report = `document.documentElement.dataset.pwned='%s';parent.postMessage({pwned:'%s'},'*')`
	mdScript := fmt.Sprintf("<script>"+report+"</script>", "md", "md")
	htmlOut := fmt.Sprintf(`<table><tr><th>region</th></tr><tr><td>north 42</td></tr></table><img src=x onerror="`+report+`">`, "img", "img")
	notebookOf(t, nb,
		testCell{typ: "markdown", source: "# Quarterly report\n\nRevenue is **up**.\n\n" + mdScript},
		testCell{typ: "code", source: fmt.Sprintf("import base64\nfrom IPython.display import Image, display\ndisplay(Image(data=base64.b64decode(%q)))", testPNG(t))},
		testCell{typ: "code", source: fmt.Sprintf("from IPython.display import HTML, display\ndisplay(HTML(%q))", htmlOut)},
		testCell{typ: "code", source: "print('before the error')\n1/0"},
	)
	args := map[string]any{"path": nb}
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "execute_cells", Arguments: args})
	if err != nil || res.IsError {
		t.Fatalf("execute_cells: %v %s", err, labtest.ResultText(res))
	}
	mountView(t, ctx, cs, "v1", args, res)

	waitView(t, ctx, "v1", `document.querySelectorAll('.cell').length === 4`, "the four cells")
	waitView(t, ctx, "v1", `document.querySelector('.cell.markdown h1')?.textContent === 'Quarterly report' && document.querySelector('.cell.markdown strong')?.textContent === 'up'`, "the rendered markdown")
	waitView(t, ctx, "v1", `(() => { const img = document.querySelector('[data-id="c1"] .outputs img'); return !!img && img.src.startsWith('data:image/png;base64,') && img.complete && img.naturalWidth === 4; })()`, "the PNG output, decoded")
	waitView(t, ctx, "v1", `document.querySelector('[data-id="c2"] .outputs td')?.textContent === 'north 42'`, "the HTML table output")
	waitView(t, ctx, "v1", `/ZeroDivisionError/.test(document.querySelector('[data-id="c3"] .error')?.textContent || '') && /before the error/.test(document.querySelector('[data-id="c3"] .stream')?.textContent || '')`, "the traceback and the printed line")
	// The call ran c1..c3: those are highlighted, the markdown cell is not.
	waitView(t, ctx, "v1", `[...document.querySelectorAll('.cell.changed')].map((c) => c.dataset.id).join() === 'c1,c2,c3'`, "c1 to c3 highlighted")
	// Mark the view's document: a reload would lose the mark.
	if _, err := viewEval[bool](ctx, "v1", `(document.body.dataset.mark = 'kept') === 'kept'`); err != nil {
		t.Fatal(err)
	}

	// The agent inserts and runs a cell; the view shows it by itself.
	ins := labtest.Call[insertOut](t, cs, "insert_cell", map[string]any{"path": nb, "source": "print('hello from the agent')", "execute": true})
	waitView(t, ctx, "v1", fmt.Sprintf(`/hello from the agent/.test(document.querySelector('[data-id=%q] .outputs')?.textContent || '')`, ins.CellID), "the new cell's output")
	waitView(t, ctx, "v1", fmt.Sprintf(`document.querySelectorAll('.cell').length === 5 && [...document.querySelectorAll('.cell.changed')].map((c) => c.dataset.id).join() === %q`, ins.CellID), "the new cell, highlighted alone")
	if mark, err := viewEval[string](ctx, "v1", `document.body.dataset.mark || ''`); err != nil || mark != "kept" {
		t.Fatalf("the view was reloaded (mark %q, %v)", mark, err)
	}
	host, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]any](`window.host`))
	if err != nil {
		t.Fatal(err)
	}
	if host["inits"] != float64(1) || len(host["errors"].([]any)) != 0 {
		t.Fatalf("the host saw %v initializations and errors %v", host["inits"], host["errors"])
	}
	// The notebook's script and the output's onerror never ran (by now the
	// view has rendered them and polled again).
	if pwned, _ := host["pwned"].([]any); len(pwned) != 0 {
		t.Fatalf("notebook scripts ran in the view: %v", pwned)
	}
	if flag, err := viewEval[string](ctx, "v1", `document.documentElement.dataset.pwned || ''`); err != nil || flag != "" {
		t.Fatalf("notebook scripts ran in the view: flag %q, %v", flag, err)
	}
	if text, _ := viewEval[string](ctx, "v1", `document.querySelector('.cell.markdown').textContent`); !strings.Contains(text, "<script>") {
		t.Errorf("the markdown's script is not shown as text: %q", text)
	}

	// "Open in JupyterLab" asks the host to open the notebook's lab URL.
	if _, err := viewEval[bool](ctx, "v1", `(document.getElementById('open').click(), true)`); err != nil {
		t.Fatal(err)
	}
	want := "/lab/tree/" + nb
	js := fmt.Sprintf(`window.host.openedLinks.length === 1 && window.host.openedLinks[0].endsWith(%q)`, want)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		links, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.host.openedLinks`))
		t.Fatalf("open in JupyterLab: the host was asked for %v, want …%s", links, want)
	}
}

// Bad input never leaves a blank or broken view: a notebook too large to
// show at once is paged with a marker, an output of an unknown binary MIME
// type is a placeholder naming it, and a deleted notebook says so (whether
// it goes while shown or before).
func TestAppsViewBadInput(t *testing.T) {
	cs := appsSession(t)
	ctx := appsHost(t, cs)

	big := livePath("apps-big")
	cells := []testCell{{typ: "code", source: "blob", outputs: `[{"output_type":"display_data","metadata":{},"data":{"application/x-sidecar-test-binary":"AAECAwQFBgcICQ=="}}]`}}
	for i := 1; i < 120; i++ {
		cells = append(cells, testCell{typ: "code", source: fmt.Sprintf("cell_%d = %d", i, i)})
	}
	notebookOf(t, big, cells...)
	args := map[string]any{"path": big}
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "use_notebook", Arguments: args})
	if err != nil || res.IsError {
		t.Fatalf("use_notebook: %v %s", err, labtest.ResultText(res))
	}
	mountView(t, ctx, cs, "big", args, res)
	waitView(t, ctx, "big", `document.querySelectorAll('.cell').length === 50 && /Showing cells 1–50 of 120/.test(document.querySelector('.pager .marker')?.textContent || '')`, "the first page with its marker")
	waitView(t, ctx, "big", `/application\/x-sidecar-test-binary/.test(document.querySelector('[data-id="c0"] .outputs .placeholder')?.textContent || '')`, "the placeholder naming the unknown MIME type")
	if _, err := viewEval[bool](ctx, "big", `(document.querySelector('.pager .next').click(), true)`); err != nil {
		t.Fatal(err)
	}
	waitView(t, ctx, "big", `document.querySelector('.cell')?.dataset.id === 'c50' && /Showing cells 51–100 of 120/.test(document.querySelector('.pager .marker')?.textContent || '')`, "the second page")
	// Deleted while shown: the view keeps the last state, marked stale, and
	// says why.
	if err := os.Remove(filepath.Join(shared.Root, big)); err != nil {
		t.Fatal(err)
	}
	waitView(t, ctx, "big", `/no longer exists/.test(document.querySelector('.notice.error')?.textContent || '') && document.querySelectorAll('.cell.stale').length === 50`, "the deleted notebook's last state, marked stale")

	gone := livePath("apps-gone")
	codeNotebook(t, gone, "soon = 'gone'")
	args = map[string]any{"path": gone}
	res, err = cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "use_notebook", Arguments: args})
	if err != nil || res.IsError {
		t.Fatalf("use_notebook: %v %s", err, labtest.ResultText(res))
	}
	if err := os.Remove(filepath.Join(shared.Root, gone)); err != nil {
		t.Fatal(err)
	}
	mountView(t, ctx, cs, "gone", args, res)
	waitView(t, ctx, "gone", `/This notebook cannot be shown/.test(document.querySelector('.notice.error')?.textContent || '') && document.getElementById('empty') !== null`, "that the notebook is gone")
}

// The view renders markdown in time linear in its length, whatever it
// holds: 100,000 backticks (and other openers that never close, or quotes
// nested 50,000 deep) take under 100 ms, as measured in the page itself,
// while ordinary markdown renders as it always did.
func TestAppsViewMarkdown(t *testing.T) {
	ordinary := []struct{ source, html string }{
		{
			"# Title *one*\n## Sub `code` heading ##\nSome **bold**, __bold2__, *em*, _em2_, `code`, ``co`de``, a [link](https://example.com/x \"t\") and ![img](data:image/png;base64,iVBORw0KGgo=) and ![remote](https://x/y.png), auto https://example.org/path?q=1.\nsnake_case_word and 2*3*4 and a * b * c.\n\n- item **one**\n- item [two](http://a.b)\n\n1. first\n2) second\n\n> quote *q*\n> more\n\n---\n***\n\n```python\ncode *not em*\n```\n~~~\ntilde\n~~~\nPara with link [nested **bold**](https://e.com) end.",
			"<h1>Title <em>one</em></h1><h2>Sub <code>code</code> heading</h2><p>Some <strong>bold</strong>, <strong>bold2</strong>, <em>em</em>, <em>em2</em>, <code>code</code>, <code>co`de</code>, a <a class=\"link\" title=\"https://example.com/x\">link</a> and <img alt=\"img\" src=\"data:image/png;base64,iVBORw0KGgo=\"> and <span class=\"placeholder\">[image remote]</span>, auto <a class=\"link\" title=\"https://example.org/path?q=1.\">https://example.org/path?q=1.</a> snake_case_word and 2<em>3</em>4 and a * b * c.</p><ul><li>item <strong>one</strong></li><li>item <a class=\"link\" title=\"http://a.b/\">two</a></li></ul><ol><li>first</li><li>second</li></ol><blockquote><p>quote <em>q</em> more</p></blockquote><hr><hr><pre class=\"source\">code *not em*</pre><pre class=\"source\">tilde</pre><p>Para with link <a class=\"link\" title=\"https://e.com/\">nested <strong>bold</strong></a> end.</p>",
		},
		{
			"### C# and F#\n#nohash\n####### seven\nMixed **bold with `code` inside** and *em with [link](https://x.y)* and `a*b*c` and **unclosed and *unclosed and `unclosed.",
			"<h3>C# and F</h3><p>#nohash ####### seven Mixed <strong>bold with <code>code</code> inside</strong> and <em>em with <a class=\"link\" title=\"https://x.y/\">link</a></em> and <code>a*b*c</code> and **unclosed and *unclosed and `unclosed.</p>",
		},
		{
			"A __strong with _em_ inside__ and _under_score_ and (https://paren.example/x) and <https://angle.example>.\nhttp://plain.example/a_b_c and ![alt text](javascript:alert(1)) and [js](javascript:alert(1)).",
			"<p>A <strong>strong with <em>em</em> inside</strong> and _under_score_ and (<a class=\"link\" title=\"https://paren.example/x\">https://paren.example/x</a>) and &lt;<a class=\"link\" title=\"https://angle.example/\">https://angle.example</a>&gt;. <a class=\"link\" title=\"http://plain.example/a_b_c\">http://plain.example/a_b_c</a> and <span class=\"placeholder\">[image alt text]</span>) and <a>js</a>).</p>",
		},
		{
			"* star list\n+ plus list\n  - nested?\n\n10. ten\n11. eleven\n\nText\n\n- - -\n_ _ _\n\n> # quoted heading\n> - quoted list\n\n> a\n> > b\n> > > c",
			"<ul><li>star list</li><li>plus list</li><li>nested?</li></ul><ol><li>ten</li><li>eleven</li></ol><p>Text</p><hr><hr><blockquote><h1>quoted heading</h1><ul><li>quoted list</li></ul></blockquote><blockquote><p>a</p><blockquote><p>b</p><blockquote><p>c</p></blockquote></blockquote></blockquote>",
		},
	}
	const n = 100_000
	hostile := map[string]string{
		"backticks":             "x " + strings.Repeat("`", n),
		"unclosed links":        strings.Repeat("[a](b", n/5),
		"unclosed image source": "![](" + strings.Repeat("a", n),
		"unclosed brackets":     strings.Repeat("[", n),
		"spaced heading":        "# " + strings.Repeat(" ", n) + "x",
		"nested quotes":         strings.Repeat("> ", n/2),
	}
	var cells []testCell
	for _, o := range ordinary {
		cells = append(cells, testCell{typ: "markdown", source: o.source})
	}
	names := slices.Sorted(maps.Keys(hostile))
	for _, name := range names {
		cells = append(cells, testCell{typ: "markdown", source: hostile[name]})
	}
	cs := appsSession(t)
	ctx := appsHost(t, cs)
	nb := livePath("apps-markdown")
	notebookOf(t, nb, cells...)
	args := map[string]any{"path": nb}
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "use_notebook", Arguments: args})
	if err != nil || res.IsError {
		t.Fatalf("use_notebook: %v %s", err, labtest.ResultText(res))
	}
	mountView(t, ctx, cs, "md", args, res)
	waitView(t, ctx, "md", fmt.Sprintf(`document.querySelectorAll('.cell.markdown .md').length === %d`, len(cells)), "every markdown cell")

	for i, o := range ordinary {
		got, err := viewEval[string](ctx, "md", fmt.Sprintf(`document.querySelector('[data-id="c%d"] .md').innerHTML`, i))
		if err != nil {
			t.Fatal(err)
		}
		if got != o.html {
			t.Errorf("markdown %q renders as\n%s\nwant\n%s", o.source, got, o.html)
		}
	}
	for i, name := range names {
		id := fmt.Sprintf("c%d", len(ordinary)+i)
		ms, err := viewEval[float64](ctx, "md", fmt.Sprintf(`performance.getEntriesByName('markdown %s')[0].duration`, id))
		if err != nil {
			t.Fatalf("%s: no render time in the page: %v", name, err)
		}
		t.Logf("%s (%d chars): rendered in %.1f ms", name, len(hostile[name]), ms)
		if ms >= 100 {
			t.Errorf("%s (%d chars): rendered in %.1f ms, want under 100", name, len(hostile[name]), ms)
		}
	}
}
