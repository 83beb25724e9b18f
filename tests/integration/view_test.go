package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	neturl "net/url"
	"strings"
	"testing"
	"time"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"

	"github.com/chromedp/chromedp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// embedPage opens <lab>/mcp/embed for a view in headless Chromium and
// waits until it listens for the agent.
func embedPage(t *testing.T, view string) context.Context {
	t.Helper()
	return embedPageQuery(t, "view="+view)
}

// embedPageQuery opens <lab>/mcp/embed?query in a browser of its own (a
// person's other browser, or a page another site sent them to) and waits
// until it listens for the agent.
func embedPageQuery(t *testing.T, query string) context.Context {
	t.Helper()
	ctx := newBrowser(t)
	url := fmt.Sprintf("%smcp/embed?%s&token=%s", shared.URL, query, shared.Token)
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open the embed page: %v", err)
	}
	ready := `window.embedReady === true`
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](ready, chromedp.WithPollingTimeout(90*time.Second))); err != nil {
		screenshot(t, ctx)
		t.Fatalf("the embed page never showed JupyterLab: %v", err)
	}
	return ctx
}

// framedPath is the notebook the framed JupyterLab shows now.
const framedPath = `(() => { const app = document.getElementById('lab').contentWindow.jupyterapp;
	for (const w of app.shell.widgets('main')) if (w.isVisible && w.context) return w.context.path.replace(/^[^:/]+:/, '');
	return ''; })()`

func waitFramed(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	js := fmt.Sprintf(`%s === %q`, framedPath, path)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		got, _ := chromedp.Run(ctx, chromedp.Evaluate[string](framedPath))
		agent, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('agent').textContent`))
		screenshot(t, ctx)
		t.Fatalf("the framed lab shows %q, want %q (the panel names the agent's notebook %q)", got, path, agent)
	}
}

// The page follows the linked session's notebook, the session follows the
// notebook opened in the page, and an unlinked session moves nothing.
func TestEmbedViewFollowsAgentAndPerson(t *testing.T) {
	dir := fmt.Sprintf("view%d", time.Now().UnixNano())
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		codeNotebook(t, dir+"/"+n+".ipynb", n+" = 1")
	}
	nb := func(n string) string { return dir + "/" + n + ".ipynb" }
	view := fmt.Sprintf("v%d", time.Now().UnixNano()%1e9)
	ctx := embedPage(t, view)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`window.shown = [];
		document.getElementById('lab').contentWindow.jupyterapp.shell.layoutModified.connect(() => window.shown.push(`+framedPath+`));`)); err != nil {
		t.Fatal(err)
	}

	agent, other := session(t), session(t)
	labtest.Call[map[string]any](t, agent, "link_view", map[string]any{"view_id": view})

	// Agent -> view.
	labtest.Call[notebookRef](t, agent, "use_notebook", map[string]any{"path": nb("a")})
	waitFramed(t, ctx, nb("a"))
	labtest.Call[notebookRef](t, agent, "use_notebook", map[string]any{"path": nb("b")})
	waitFramed(t, ctx, nb("b"))

	// View -> agent: the person opens c in the page; the agent's next call
	// without a path acts on c.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
		`document.getElementById('lab').contentWindow.jupyterapp.commands.execute('docmanager:open', {path: %q})`, nb("c")))); err != nil {
		t.Fatal(err)
	}
	waitFramed(t, ctx, nb("c"))
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := labtest.Call[readOut](t, agent, "read_notebook", nil)
		if r.Path == nb("c") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent still works on %s after the person opened %s", r.Path, nb("c"))
		}
		time.Sleep(200 * time.Millisecond) // the page reports asynchronously
	}
	if v := labtest.Call[viewOut](t, agent, "link_view", nil); v.ViewID != view || v.Showing != nb("c") {
		t.Fatalf("link_view without id = %+v", v)
	}

	// An unlinked session does not move the page; the linked one still does.
	labtest.Call[notebookRef](t, other, "use_notebook", map[string]any{"path": nb("d")})
	labtest.Call[notebookRef](t, agent, "use_notebook", map[string]any{"path": nb("e")})
	waitFramed(t, ctx, nb("e"))
	shown, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.shown`))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range shown {
		if p == nb("d") {
			t.Fatalf("an unlinked session moved the page: %v", shown)
		}
	}
}

// Without the lab's token the embed page does not load.
func TestEmbedPageNeedsToken(t *testing.T) {
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, q := range []string{"", "&token=wrong"} {
		resp, err := noRedirect.Get(shared.URL + "mcp/embed?view=x" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatalf("embed page%s: status 200 without a valid token", q)
		}
	}
	resp, err := noRedirect.Get(shared.URL + "mcp/embed?view=x&token=" + shared.Token)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("embed page with the token: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// Once the embed page is up, the lab's token it was opened with is gone
// from the address (and so from history): the other parameters stay.
func TestEmbedPageDropsToken(t *testing.T) {
	nb := fmt.Sprintf("view%d/token.ipynb", time.Now().UnixNano())
	codeNotebook(t, nb, "x = 1")
	view := fmt.Sprintf("v%d", time.Now().UnixNano()%1e9)
	ctx := newBrowser(t)
	url := fmt.Sprintf("%smcp/embed?view=%s&token=%s&path=%s#top", shared.URL, view, shared.Token, nb)
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open the embed page: %v", err)
	}
	pollPage(t, ctx, `window.embedReady === true`, "the embed page never became ready")
	waitFramed(t, ctx, nb)
	href, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(href, shared.Token) || strings.Contains(href, "token=") {
		t.Fatalf("the address still holds the token: %s", strings.ReplaceAll(href, shared.Token, "<token>"))
	}
	if want := fmt.Sprintf("%smcp/embed?view=%s&path=%s#top", shared.URL, view, strings.ReplaceAll(nb, "/", "%2F")); href != want {
		t.Fatalf("the address is %s, want %s", href, want)
	}
}

// A view id outside the sidecar's alphabet never reaches the frame's path:
// the page says what is wrong and loads nothing.
func TestEmbedPageRejectsBadView(t *testing.T) {
	ctx := newBrowser(t)
	for _, view := range []string{"../../files/x", "a/b", "x y", "<b>", strings.Repeat("a", 65)} {
		url := fmt.Sprintf("%smcp/embed?view=%s&token=%s", shared.URL, neturl.QueryEscape(view), shared.Token)
		// Navigate returns after the load event, by when the page's check,
		// which runs before anything is awaited, has run.
		if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
			t.Fatalf("open the embed page: %v", err)
		}
		type pageState struct {
			Src   *string `json:"src"`
			Error string  `json:"error"`
		}
		state, err := chromedp.Run(ctx, chromedp.Evaluate[pageState](`({src: document.getElementById('lab').getAttribute('src'),
			error: document.getElementById('view-error')?.textContent || ''})`))
		if err != nil {
			t.Fatal(err)
		}
		if state.Src != nil {
			t.Errorf("view %q: the frame loads %q", view, *state.Src)
		}
		if !strings.Contains(state.Error, "is not valid: use 1 to 64 letters, digits, - or _") {
			t.Errorf("view %q: the page says %q", view, state.Error)
		}
	}
}

// recordReports makes the page record each report of what it shows, with
// the sidecar's answer: window.reports, [path, status] pairs.
func recordReports(t *testing.T, ctx context.Context) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`window.reports = []; const f = window.fetch;
		window.fetch = async (url, opts) => {
			const r = await f(url, opts);
			if (String(url).endsWith('embed/state')) window.reports.push([JSON.parse(opts.body).path, r.status]);
			return r;
		};`)); err != nil {
		t.Fatal(err)
	}
}

// openInFrame has the framed lab open path, as the person would.
func openInFrame(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
		`document.getElementById('lab').contentWindow.jupyterapp.commands.execute('docmanager:open', {path: %q})`, path))); err != nil {
		t.Fatal(err)
	}
	waitFramed(t, ctx, path)
}

// A view id the embedder chose can be known to other sites, which can send
// the person to a page of that view with a notebook of their choosing: such
// a page follows the agent but never moves its session. Only the pages that
// showed the view when the session linked move it; linking with none open
// says so.
func TestEmbedChosenViewMovesOnlyLinkedPages(t *testing.T) {
	dir := fmt.Sprintf("view%d", time.Now().UnixNano())
	a, b, other := dir+"/a.ipynb", dir+"/b.ipynb", dir+"/other.ipynb"
	for _, nb := range []string{a, b, other} {
		codeNotebook(t, nb, "x = 1")
	}
	view := fmt.Sprintf("chat-%d", time.Now().UnixNano()%1e9)
	agent := session(t)
	if out := labtest.Call[viewOut](t, agent, "link_view", map[string]any{"view_id": view}); !strings.Contains(out.Note, "no page shows view "+view) {
		t.Fatalf("link_view with no page open: note %q", out.Note)
	}
	person := embedPage(t, view)
	if out := labtest.Call[viewOut](t, agent, "link_view", map[string]any{"view_id": view}); out.Note != "" {
		t.Fatalf("link_view with the page open: note %q", out.Note)
	}
	labtest.Call[notebookRef](t, agent, "use_notebook", map[string]any{"path": a})
	waitFramed(t, person, a)

	// Another site sends the person to the view with its own notebook.
	sent := embedPageQuery(t, fmt.Sprintf("view=%s&path=%s", view, neturl.QueryEscape(other)))
	waitFramed(t, sent, a) // it follows the agent...
	recordReports(t, sent)
	openInFrame(t, sent, other)
	pollPage(t, sent, fmt.Sprintf(`window.reports.some(([path]) => path === %q)`, other), "the sent page never reported its notebook")
	if reports, _ := chromedp.Run(sent, chromedp.Evaluate[[][]any](`window.reports`)); fmt.Sprint(reports) != fmt.Sprintf("[[%s 403]]", other) {
		t.Errorf("the sent page's reports and the sidecar's answers: %v", reports)
	}
	// ...but moves nothing, and says so.
	if r := labtest.Call[readOut](t, agent, "read_notebook", nil); r.Path != a {
		t.Fatalf("a page the session did not link moved it to %s", r.Path)
	}
	if v := labtest.Call[viewOut](t, agent, "link_view", nil); v.Showing != a {
		t.Fatalf("link_view says the person looks at %q, want %q", v.Showing, a)
	}
	pollPage(t, sent, `document.getElementById('view-error').textContent.includes('did not show the view when its session linked it')`, "the sent page does not say it moves nothing")

	// The linked page still moves the session.
	openInFrame(t, person, b)
	showingUntil(t, agent, b)
	if r := labtest.Call[readOut](t, agent, "read_notebook", nil); r.Path != b {
		t.Fatalf("the agent works on %s after the person opened %s in the linked page", r.Path, b)
	}
}

// A platform asks the sidecar for a view id (128 random bits) and links the
// agent before the page opens: any page with that id moves the session. A
// page opened without a view gets such an id in its URL.
func TestEmbedIssuedViewID(t *testing.T) {
	dir := fmt.Sprintf("view%d", time.Now().UnixNano())
	a, b := dir+"/a.ipynb", dir+"/b.ipynb"
	codeNotebook(t, a, "a = 1")
	codeNotebook(t, b, "b = 1")
	req, err := http.NewRequest(http.MethodGet, shared.URL+"mcp/embed/view-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "token "+shared.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var issued struct{ View string }
	err = json.NewDecoder(resp.Body).Decode(&issued)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || len(issued.View) != 32 {
		t.Fatalf("GET embed/view-id: %d %+v %v", resp.StatusCode, issued, err)
	}

	agent := session(t)
	if out := labtest.Call[viewOut](t, agent, "link_view", map[string]any{"view_id": issued.View}); out.Note != "" {
		t.Fatalf("link_view on an issued id with no page open: note %q", out.Note)
	}
	labtest.Call[notebookRef](t, agent, "use_notebook", map[string]any{"path": a})
	ctx := embedPage(t, issued.View)
	waitFramed(t, ctx, a)
	openInFrame(t, ctx, b)
	showingUntil(t, agent, b)
	if r := labtest.Call[readOut](t, agent, "read_notebook", nil); r.Path != b {
		t.Fatalf("the agent works on %s after the person opened %s", r.Path, b)
	}

	fresh := embedPageQuery(t, "x=1")
	view, err := chromedp.Run(fresh, chromedp.Evaluate[string](`new URLSearchParams(location.search).get('view')`))
	if err != nil {
		t.Fatal(err)
	}
	if len(view) != 32 || view == issued.View {
		t.Fatalf("a page opened without a view has view %q", view)
	}
	// Issued: a report under another page's key moves the session linked
	// to it (for a chosen id the sidecar would refuse it).
	second := session(t)
	labtest.Call[viewOut](t, second, "link_view", map[string]any{"view_id": view})
	labtest.Call[notebookRef](t, second, "use_notebook", map[string]any{"path": a})
	status, err := chromedp.Run(fresh, chromedp.Evaluate[int](fmt.Sprintf(`(async () => {
		const xsrf = (document.cookie.match(/(?:^|;\s*)_xsrf=([^;]*)/) || [])[1] || '';
		const r = await fetch(location.pathname + '/state', {method: 'POST',
			headers: {'Content-Type': 'application/json', 'X-XSRFToken': xsrf},
			body: JSON.stringify({view: %q, page: 'another-page', path: %q})});
		return r.status; })()`, view, b), chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if r := labtest.Call[readOut](t, second, "read_notebook", nil); status != http.StatusNoContent || r.Path != b {
		t.Fatalf("another page's report on the fresh page's view: %d, and the session works on %s", status, r.Path)
	}
}

type viewOut struct {
	ViewID  string `json:"view_id"`
	Showing string `json:"showing"`
	Note    string `json:"note"`
}

// pollPage waits until the page's expression js is true.
func pollPage(t *testing.T, ctx context.Context, js, what string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		panel, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('panel').innerText`))
		screenshot(t, ctx)
		t.Fatalf("%s: %v; the panel reads:\n%s", what, err, panel)
	}
}

// panelSays is true when the panel's element id reads text.
func panelSays(id, text string) string {
	return fmt.Sprintf(`document.getElementById(%q).textContent === %q`, id, text)
}

// showingUntil asks link_view what the page shows until it answers want:
// the page reports asynchronously.
func showingUntil(t *testing.T, cs *mcp.ClientSession, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v := labtest.Call[viewOut](t, cs, "link_view", nil)
		if v.Showing == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("link_view says the page shows %q, want %q", v.Showing, want)
		}
		time.Sleep(200 * time.Millisecond) // polling a condition with a deadline
	}
}

// linkedEmbed opens an embed page, links a new MCP session to it and has
// the session use nb, which the framed lab then shows.
func linkedEmbed(t *testing.T, nb string) (context.Context, *mcp.ClientSession) {
	t.Helper()
	view := fmt.Sprintf("v%d", time.Now().UnixNano()%1e9)
	ctx := embedPage(t, view)
	agent := session(t)
	labtest.Call[map[string]any](t, agent, "link_view", map[string]any{"view_id": view})
	labtest.Call[notebookRef](t, agent, "use_notebook", map[string]any{"path": nb})
	waitFramed(t, ctx, nb)
	return ctx, agent
}

// closeAll closes every tab of the framed lab, as a person would, so that
// it shows the Launcher.
func closeAll(t *testing.T, ctx context.Context) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](
		`document.getElementById('lab').contentWindow.jupyterapp.commands.execute('application:close-all')`)); err != nil {
		t.Fatal(err)
	}
	waitFramed(t, ctx, "")
}

// The person closes the notebook the page showed; the page then reports that
// it shows nothing, and the agent's use_notebook on that same notebook opens
// it again.
func TestEmbedReopensClosedNotebook(t *testing.T) {
	nb := fmt.Sprintf("view%d/closed.ipynb", time.Now().UnixNano())
	codeNotebook(t, nb, "x = 1")
	ctx, agent := linkedEmbed(t, nb)
	showingUntil(t, agent, nb)

	closeAll(t, ctx)
	showingUntil(t, agent, "")
	pollPage(t, ctx, panelSays("showing", "nothing (no notebook open)"), "the panel does not say that the page shows nothing")
	// The session keeps its notebook: closing a tab is no switch.
	if r := labtest.Call[readOut](t, agent, "read_notebook", nil); r.Path != nb {
		t.Fatalf("after the person closed the tab the agent works on %q", r.Path)
	}

	labtest.Call[notebookRef](t, agent, "use_notebook", map[string]any{"path": nb})
	waitFramed(t, ctx, nb)
	showingUntil(t, agent, nb)
	pollPage(t, ctx, panelSays("showing", nb), "the panel does not name the notebook shown again")
}

// The panel's "Agent's notebook" is the session's current notebook: it
// follows the person's switches too, not only the agent's.
func TestEmbedPanelNamesSessionNotebook(t *testing.T) {
	dir := fmt.Sprintf("view%d", time.Now().UnixNano())
	a, b := dir+"/a.ipynb", dir+"/b.ipynb"
	codeNotebook(t, a, "a = 1")
	codeNotebook(t, b, "b = 1")
	ctx, agent := linkedEmbed(t, a)
	pollPage(t, ctx, panelSays("agent", a), "the panel does not name the agent's notebook")

	// The person opens b: the session now works on b, and the panel says so.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
		`document.getElementById('lab').contentWindow.jupyterapp.commands.execute('docmanager:open', {path: %q})`, b))); err != nil {
		t.Fatal(err)
	}
	waitFramed(t, ctx, b)
	showingUntil(t, agent, b)
	if r := labtest.Call[readOut](t, agent, "read_notebook", nil); r.Path != b {
		t.Fatalf("the agent works on %q after the person opened %q", r.Path, b)
	}
	pollPage(t, ctx, panelSays("agent", b), "the panel's agent notebook did not follow the person's switch")
}

// The switcher lists a notebook created after the page loaded, once the
// person opens it, and picking it shows it.
func TestEmbedSwitcherListsNewNotebooks(t *testing.T) {
	dir := fmt.Sprintf("view%d", time.Now().UnixNano())
	early, late := dir+"/early.ipynb", dir+"/late.ipynb"
	codeNotebook(t, early, "early = 1")
	view := fmt.Sprintf("v%d", time.Now().UnixNano()%1e9)
	ctx := embedPage(t, view)
	listed := func(nb string) string {
		return fmt.Sprintf(`[...document.getElementById('switcher').options].some((o) => o.value === %q)`, nb)
	}
	pollPage(t, ctx, listed(early), "the switcher does not list a notebook that existed at page load")
	codeNotebook(t, late, "late = 1")

	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#switcher`))); err != nil {
		t.Fatal(err)
	}
	pollPage(t, ctx, listed(late), "the switcher does not list a notebook created after the page loaded")
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
		`(() => { const s = document.getElementById('switcher'); s.value = %q; s.dispatchEvent(new Event('change')); })()`, late))); err != nil {
		t.Fatal(err)
	}
	waitFramed(t, ctx, late)
}

// The embed page lists the agents' changes to the notebook it shows, as
// they happen, with each cell's diff; its Revert undoes one, and "Revert
// all since…" — once confirmed, naming how many — that one and the
// session's later ones: read_notebook has the sources from before them.
func TestEmbedListsAndRevertsChanges(t *testing.T) {
	nb := fmt.Sprintf("view%d/changes.ipynb", time.Now().UnixNano())
	codeNotebook(t, nb, "a = 1", "b = 2")
	ctx, agent := linkedEmbed(t, nb)
	click := func(sel string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
			t.Fatalf("click %s: %v", sel, err)
		}
	}
	item := func(id int) string { return fmt.Sprintf(`#changes li[data-change-id="%d"]`, id) }
	wantSources := func(when string, want ...string) {
		t.Helper()
		r := labtest.Call[readOut](t, agent, "read_notebook", map[string]any{"path": nb})
		if got := sources(r); got != strings.Join(want, "|") {
			t.Fatalf("%s, read_notebook shows %q, want %q", when, got, strings.Join(want, "|"))
		}
	}

	labtest.Call[map[string]any](t, agent, "edit_cell", map[string]any{"path": nb, "cell_id": "c0", "source": "a = 10"})
	labtest.Call[map[string]any](t, agent, "edit_cell", map[string]any{"path": nb, "cell_id": "c1", "source": "b = 20"})
	pollPage(t, ctx, `[...document.querySelectorAll('#changes li')].map(li => li.dataset.changeId).join() === '2,1'`, "the page lists changes 2 and 1, newest first")
	pollPage(t, ctx, fmt.Sprintf(`document.querySelector('%s').innerText.includes('edit_cell')`, item(1)), "change 1 names its tool")
	pollPage(t, ctx, fmt.Sprintf(`(() => { const i = document.querySelector('%s'); return i.innerText.includes('edit cell 2') &&
		i.querySelector('.add')?.textContent.includes('b = 20') && i.querySelector('.del')?.textContent.includes('b = 2') })()`, item(2)),
		"change 2 shows its cell and colored diff")

	click(item(1) + ` button.revert`)
	pollPage(t, ctx, fmt.Sprintf(`!!document.querySelector('%[1]s .undone') && !document.querySelector('%[1]s button')`, item(1)), "change 1 shows as undone")
	wantSources("after reverting change 1 from the page", "a = 1", "b = 20")

	labtest.Call[map[string]any](t, agent, "edit_cell", map[string]any{"path": nb, "cell_id": "c0", "source": "a = 30"})
	pollPage(t, ctx, fmt.Sprintf(`!!document.querySelector('%s')`, item(3)), "change 3 is listed")
	click(item(2) + ` button.since`)
	pollPage(t, ctx, fmt.Sprintf(`document.querySelector('%s .confirm')?.innerText.includes('Revert #2 and the 1 later change of this session?')`, item(2)),
		"Revert all since asks to confirm, with the count")
	wantSources("while the page asks to confirm", "a = 30", "b = 20")
	click(item(2) + ` .confirm button.yes`)
	pollPage(t, ctx, fmt.Sprintf(`['%s', '%s'].every(s => !!document.querySelector(s + ' .undone'))`, item(2), item(3)), "changes 2 and 3 show as undone")
	wantSources("after reverting all since change 2", "a = 1", "b = 2")
}
