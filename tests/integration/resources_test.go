package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

// nbURI is the resource URI of a notebook path (test paths need no escaping).
func nbURI(path string) string { return "notebook:///" + path }

// updates is a session that records resources/updated notifications.
func updatesSession(t *testing.T) (*mcp.ClientSession, <-chan string) {
	t.Helper()
	ch := make(chan string, 256)
	cs, err := shared.ConnectWith(t.Context(), "mcp", "token "+shared.Token, &mcp.ClientOptions{
		ResourceUpdatedHandler: func(_ context.Context, req *mcp.ResourceUpdatedNotificationRequest) { ch <- req.Params.URI },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs, ch
}

// readText reads a resource that has one text content.
func readText(t *testing.T, cs *mcp.ClientSession, uri string) string {
	t.Helper()
	res, err := cs.ReadResource(t.Context(), &mcp.ReadResourceParams{URI: uri})
	if err != nil {
		t.Fatalf("read %s: %v", uri, err)
	}
	if len(res.Contents) == 0 {
		t.Fatalf("read %s: no contents", uri)
	}
	return res.Contents[0].Text
}

// untilUpdated waits for notifications of uri, re-reading readURI after
// each, until the read contains want: the notification is what wakes the
// test, and changes arrive in bursts (keystrokes), so one may come before
// the change the test waits for is complete.
func untilUpdated(t *testing.T, cs *mcp.ClientSession, ch <-chan string, uri, readURI, want string) {
	t.Helper()
	timeout := time.After(90 * time.Second)
	for {
		select {
		case got := <-ch:
			if got != uri {
				continue
			}
			if strings.Contains(readText(t, cs, readURI), want) {
				return
			}
		case <-timeout:
			t.Fatalf("no notification of %s after which %s holds %q; it holds:\n%s", uri, readURI, want, readText(t, cs, readURI))
		}
	}
}

// Notebooks are listed as resources, page by page; the notebook, its text
// form, a cell with its outputs and an image output can be read.
func TestResourcesListAndRead(t *testing.T) {
	cs := session(t)
	dir := fmt.Sprintf("res-%d", time.Now().UnixNano())
	png := testPNG(t)
	nb := dir + "/read.ipynb"
	notebookOf(t, nb,
		testCell{typ: "markdown", source: "# Title"},
		testCell{typ: "code", source: "plot()", outputs: `[{"output_type":"stream","name":"stdout","text":["hello\n"]},` +
			`{"output_type":"display_data","metadata":{},"data":{"image/png":"` + png + `","text/plain":["<Figure>"]}}]`})
	// More notebooks than one page holds (100), removed after the test so
	// that other tests' listings stay as they were.
	for i := range 100 {
		codeNotebook(t, fmt.Sprintf("%s/page/n%03d.ipynb", dir, i), "x = 1")
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Join(shared.Root, dir)) })

	first, err := cs.ListResources(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if first.NextCursor == "" || len(first.Resources) < 100 {
		t.Fatalf("first page: %d resources, next cursor %q", len(first.Resources), first.NextCursor)
	}
	seen := map[string]*mcp.Resource{}
	for r, err := range cs.Resources(t.Context(), nil) { // follows the cursors
		if err != nil {
			t.Fatal(err)
		}
		if seen[r.URI] != nil {
			t.Fatalf("%s listed twice", r.URI)
		}
		seen[r.URI] = r
	}
	if r := seen[nbURI(nb)]; r == nil || r.MIMEType != "application/x-ipynb+json" || r.Name != nb {
		t.Fatalf("the notebook is not listed as it should be: %+v", r)
	}
	for i := range 100 {
		if seen[nbURI(fmt.Sprintf("%s/page/n%03d.ipynb", dir, i))] == nil {
			t.Fatalf("notebook %d of the folder is not listed", i)
		}
	}
	if seen["ui://jupyter/notebook-view.html"] == nil {
		t.Fatal("the server's own view resource is no longer listed")
	}
	if _, err := cs.ListResources(t.Context(), &mcp.ListResourcesParams{Cursor: "bogus"}); err == nil || !strings.Contains(err.Error(), "invalid cursor") {
		t.Fatalf("bogus cursor: %v", err)
	}

	var templates []string
	for rt, err := range cs.ResourceTemplates(t.Context(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		templates = append(templates, rt.URITemplate)
	}
	for _, want := range []string{"notebook:///{+path}", "notebook:///{+path}{?format}", "notebook:///{+path}{?cell}", "notebook:///{+path}{?cell,output}"} {
		if !strings.Contains(strings.Join(templates, " "), want) {
			t.Fatalf("templates %v lack %s", templates, want)
		}
	}

	res, err := cs.ReadResource(t.Context(), &mcp.ReadResourceParams{URI: nbURI(nb)})
	if err != nil {
		t.Fatal(err)
	}
	var parsed struct {
		NBFormat int `json:"nbformat"`
		Cells    []struct {
			ID string `json:"id"`
		} `json:"cells"`
	}
	if c := res.Contents[0]; c.MIMEType != "application/x-ipynb+json" || json.Unmarshal([]byte(c.Text), &parsed) != nil || parsed.NBFormat != 4 || len(parsed.Cells) != 2 {
		t.Fatalf("nbformat read: %s %.300s", c.MIMEType, c.Text)
	}
	if text := readText(t, cs, nbURI(nb)+"?format=text"); !strings.Contains(text, "--- cell 1 · id c1 · code") || !strings.Contains(text, "hello") {
		t.Fatalf("text read:\n%s", text)
	}

	res, err = cs.ReadResource(t.Context(), &mcp.ReadResourceParams{URI: nbURI(nb) + "?cell=c1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Contents) != 3 || !strings.Contains(res.Contents[0].Text, "plot()") ||
		res.Contents[1].URI != nbURI(nb)+"?cell=c1&output=0" || res.Contents[1].Text != "hello\n" ||
		res.Contents[2].URI != nbURI(nb)+"?cell=c1&output=1" || res.Contents[2].MIMEType != "image/png" {
		t.Fatalf("cell read: %s", jsonOf(t, res.Contents))
	}
	res, err = cs.ReadResource(t.Context(), &mcp.ReadResourceParams{URI: nbURI(nb) + "?cell=c1&output=1"})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := base64.StdEncoding.DecodeString(png)
	if c := res.Contents[0]; c.MIMEType != "image/png" || !bytes.Equal(c.Blob, want) || c.Text != "" {
		t.Fatalf("image output: %s, %d bytes, want %d", c.MIMEType, len(c.Blob), len(want))
	}
}

// resourceErr checks that err is a JSON-RPC error with code and message.
func resourceErr(t *testing.T, what string, err error, code int64, msg string) {
	t.Helper()
	var je *jsonrpc.Error
	if !errors.As(err, &je) || je.Code != code || !strings.Contains(je.Message, msg) {
		t.Fatalf("%s: got %v, want code %d saying %q", what, err, code, msg)
	}
}

// Bad URIs get precise errors, with go-sdk's resource-not-found code for
// what does not exist, and change nothing.
func TestResourcesBadInput(t *testing.T) {
	cs := session(t)
	nb := fmt.Sprintf("res-bad-%d.ipynb", time.Now().UnixNano())
	codeNotebook(t, nb, "x = 1")
	before := readFile(t, nb)
	read := func(uri string) error {
		_, err := cs.ReadResource(t.Context(), &mcp.ReadResourceParams{URI: uri})
		return err
	}
	resourceErr(t, "unknown URI", read("nope://x"), mcp.CodeResourceNotFound, "Resource not found")
	resourceErr(t, "missing notebook", read(nbURI("no-such.ipynb")), mcp.CodeResourceNotFound, `notebook "no-such.ipynb" does not exist`)
	resourceErr(t, "missing cell", read(nbURI(nb)+"?cell=zz"), mcp.CodeResourceNotFound, `has no cell with id "zz"`)
	resourceErr(t, "missing output", read(nbURI(nb)+"?cell=c0&output=0"), mcp.CodeResourceNotFound, "has 0 outputs")
	resourceErr(t, "malformed", read(nbURI(nb)+"#cell=c0"), jsonrpc.CodeInvalidParams, "fragments are not used")
	resourceErr(t, "malformed", read(nbURI(nb)+"?cell=c0&format=text"), jsonrpc.CodeInvalidParams, "a cell is always text")
	resourceErr(t, "escape", read("notebook:///../x.ipynb"), jsonrpc.CodeInvalidParams, "leaves the Jupyter root")
	resourceErr(t, "folder", read(nbURI("live")), jsonrpc.CodeInvalidParams, "ending in .ipynb")

	subscribe := func(uri string) error { return cs.Subscribe(t.Context(), &mcp.SubscribeParams{URI: uri}) }
	resourceErr(t, "subscribe unknown", subscribe("nope://x"), mcp.CodeResourceNotFound, "Resource not found")
	resourceErr(t, "subscribe malformed", subscribe(nbURI(nb)+"?x=1"), jsonrpc.CodeInvalidParams, `"x" is not known`)
	gone := fmt.Sprintf("res-gone-%d.ipynb", time.Now().UnixNano())
	codeNotebook(t, gone, "y = 2")
	if err := os.Remove(filepath.Join(shared.Root, gone)); err != nil {
		t.Fatal(err)
	}
	resourceErr(t, "subscribe deleted", subscribe(nbURI(gone)), mcp.CodeResourceNotFound, "does not exist")
	if _, err := os.Stat(filepath.Join(shared.Root, gone)); !os.IsNotExist(err) {
		t.Fatalf("the deleted notebook came back: %v", err)
	}
	if readFile(t, nb) != before {
		t.Fatal("a bad read changed the notebook")
	}
}

// A subscriber hears of a person's edit in JupyterLab and of the agent's
// insert_cell, and a re-read shows each; after unsubscribing it hears
// nothing while a subscription to one of the notebook's cells still does.
func TestResourcesSubscribeLive(t *testing.T) {
	cs, updated := updatesSession(t)
	agent := session(t)
	nb := livePath("subscribe")
	codeNotebook(t, nb, "first = 1")
	uri := nbURI(nb)
	if err := cs.Subscribe(t.Context(), &mcp.SubscribeParams{URI: uri}); err != nil {
		t.Fatal(err)
	}
	ctx := browser(t, nb)
	typeAtEnd(t, ctx, "  # typed by a person")
	untilUpdated(t, cs, updated, uri, uri, "first = 1  # typed by a person")

	labtest.Call[insertOut](t, agent, "insert_cell", map[string]any{"path": nb, "source": "agent_inserted = 2"})
	untilUpdated(t, cs, updated, uri, uri, "agent_inserted = 2")

	// A fresh session subscribes to the notebook and to one of its cells,
	// then unsubscribes from the notebook: later edits are told for the
	// cell only. The URIs of one notebook go out in one round, the
	// notebook's first, so once the cell's notification has arrived, the
	// notebook's would have too. A round that began before the unsubscribe
	// may still name the notebook: the first edit flushes those out.
	other, otherUpdates := updatesSession(t)
	cell := uri + "?cell=c0"
	for _, u := range []string{uri, cell} {
		if err := other.Subscribe(t.Context(), &mcp.SubscribeParams{URI: u}); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := other.Unsubscribe(t.Context(), &mcp.UnsubscribeParams{URI: uri}); err != nil {
			t.Fatalf("unsubscribe (twice is no error): %v", err)
		}
	}
	labtest.Call[map[string]any](t, agent, "edit_cell", map[string]any{"path": nb, "cell_id": "c0", "source": "first = 3"})
	untilUpdated(t, other, otherUpdates, cell, cell, "first = 3")
	for len(otherUpdates) > 0 {
		<-otherUpdates
	}
	labtest.Call[map[string]any](t, agent, "edit_cell", map[string]any{"path": nb, "cell_id": "c0", "source": "first = 4"})
	untilUpdated(t, other, otherUpdates, cell, cell, "first = 4")
	for len(otherUpdates) > 0 {
		if u := <-otherUpdates; u == uri {
			t.Fatal("a notification of the notebook arrived after unsubscribing")
		}
	}
}

// ackWatcher passes requests on and closes acked when a response stream
// carries the server's subscriptions/acknowledged notification: the
// subscription is in place from then on (go-sdk's client does not tell).
// It closes ended when that stream is over.
type ackWatcher struct {
	base         http.RoundTripper
	once, endOne sync.Once
	acked, ended chan struct{}
}

func (a *ackWatcher) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := a.base.RoundTrip(r)
	if err != nil || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return resp, err
	}
	pr, pw := io.Pipe()
	body := resp.Body
	go func() {
		sc := bufio.NewScanner(body)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		listen := false
		for sc.Scan() {
			line := sc.Text()
			if strings.Contains(line, "notifications/subscriptions/acknowledged") {
				listen = true
				a.once.Do(func() { close(a.acked) })
			}
			if _, err := io.WriteString(pw, line+"\n"); err != nil {
				break
			}
		}
		body.Close()
		pw.CloseWithError(sc.Err())
		if listen {
			a.endOne.Do(func() { close(a.ended) })
		}
	}()
	resp.Body = pr
	return resp, nil
}

// Under protocol 2026-07-28 (no sessions) a subscription is a
// subscriptions/listen stream: the agent's edit is told on it.
func TestResourcesListen2026(t *testing.T) {
	agent := session(t)
	nb := livePath("listen")
	codeNotebook(t, nb, "x = 1")
	uri := nbURI(nb)
	updated := make(chan string, 64)
	watcher := &ackWatcher{base: labtest.AuthClient("token " + shared.Token).Transport, acked: make(chan struct{}), ended: make(chan struct{})}
	c := mcp.NewClient(&mcp.Implementation{Name: "listen", Version: "v0"}, &mcp.ClientOptions{
		ResourceUpdatedHandler: func(_ context.Context, req *mcp.ResourceUpdatedNotificationRequest) { updated <- req.Params.URI },
	})
	cs, err := c.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: shared.URL + "mcp", HTTPClient: &http.Client{Transport: watcher}, MaxRetries: -1},
		&mcp.ClientSessionOptions{ProtocolVersion: "2026-07-28"})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if v := cs.InitializeResult().ProtocolVersion; v != "2026-07-28" {
		t.Fatalf("protocol %s", v)
	}
	// go-sdk's Subscribe sends subscriptions/listen and returns without
	// waiting: the server's acknowledgement on the stream says it holds.
	if err := cs.Subscribe(t.Context(), &mcp.SubscribeParams{URI: uri}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-watcher.acked:
	case <-time.After(60 * time.Second):
		t.Fatal("subscriptions/listen was never acknowledged")
	}
	labtest.Call[insertOut](t, agent, "insert_cell", map[string]any{"path": nb, "source": "told_on_listen = 1"})
	untilUpdated(t, cs, updated, uri, uri, "told_on_listen = 1")
	// Unsubscribing ends the listen stream (the proxy passes the close on,
	// and go-sdk then drops the subscription).
	if err := cs.Unsubscribe(t.Context(), &mcp.UnsubscribeParams{URI: uri}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-watcher.ended:
	case <-time.After(60 * time.Second):
		t.Fatal("the listen stream is still open after Unsubscribe")
	}
}

// Notebooks created, renamed and deleted by someone else (here through the
// Contents API, as JupyterLab does it) change the resource list, which a
// client is told (notifications/resources/list_changed, from the server's
// event bus); a subscriber of a notebook renamed or deleted away is told it
// changed, and reading it then says it does not exist.
func TestResourcesListChanged(t *testing.T) {
	listChanged := make(chan struct{}, 64)
	updated := make(chan string, 64)
	cs, err := shared.ConnectWith(t.Context(), "mcp", "token "+shared.Token, &mcp.ClientOptions{
		ResourceListChangedHandler: func(context.Context, *mcp.ResourceListChangedRequest) { listChanged <- struct{}{} },
		ResourceUpdatedHandler:     func(_ context.Context, req *mcp.ResourceUpdatedNotificationRequest) { updated <- req.Params.URI },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if caps := cs.InitializeResult().Capabilities; caps.Resources == nil || !caps.Resources.ListChanged {
		t.Fatalf("resources capability %+v: want listChanged", caps.Resources)
	}
	codeNotebook(t, "events/a.ipynb", "x = 1")
	uri := nbURI("events/a.ipynb")
	if err := cs.Subscribe(t.Context(), &mcp.SubscribeParams{URI: uri}); err != nil {
		t.Fatal(err)
	}
	contents := func(method, path, body string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), method, shared.URL+"api/contents/"+path, strings.NewReader(body))
		resp, err := labtest.AuthClient("token " + shared.Token).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %d", method, path, resp.StatusCode)
		}
	}
	told := func(what string) {
		t.Helper()
		select {
		case <-listChanged:
		case <-time.After(30 * time.Second):
			t.Fatalf("no list_changed after %s", what)
		}
		for len(listChanged) > 0 { // go-sdk debounces; drain any second one
			<-listChanged
		}
	}

	// A listing makes the notebooks there known: their saves are no news.
	listed := func() []string {
		t.Helper()
		var uris []string
		for r, err := range cs.Resources(t.Context(), nil) {
			if err != nil {
				t.Fatal(err)
			}
			uris = append(uris, r.URI)
		}
		return uris
	}
	listed()
	for len(listChanged) > 0 {
		<-listChanged
	}
	contents(http.MethodPost, "events", `{"type": "notebook"}`) // JupyterLab's "New notebook"
	told("a new notebook")
	if uris := listed(); !slices.Contains(uris, nbURI("events/Untitled.ipynb")) {
		t.Fatalf("resources after the new notebook: %v", uris)
	}
	contents(http.MethodPatch, "events/a.ipynb", `{"path": "events/b.ipynb"}`)
	told("a rename")
	select {
	case got := <-updated:
		if got != uri {
			t.Fatalf("updated %s, want %s", got, uri)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the subscriber of the renamed notebook was not told")
	}
	if _, err := cs.ReadResource(t.Context(), &mcp.ReadResourceParams{URI: uri}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("reading the renamed notebook's old URI: %v, want not found", err)
	}
	contents(http.MethodDelete, "events/b.ipynb", "")
	told("a deletion")
	labtest.Call[map[string]any](t, cs, "create_notebook", map[string]any{"path": "events/c.ipynb"})
	told("create_notebook")
}
