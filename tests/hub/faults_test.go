package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

// rpcError is the JSON-RPC error message of a refused request, "" if the
// body is not one.
func rpcError(body string) string {
	var msg struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	_ = json.Unmarshal([]byte(body), &msg)
	return msg.Error.Message
}

// container is the id of the user's running container, "" if there is none.
func container(h *hubProcess, user string) string {
	out, _ := exec.Command("docker", "ps", "-aq", "--no-trunc", "--filter", "name=^"+h.Prefix+"-"+user+"$").Output()
	return strings.TrimSpace(string(out))
}

// errorRecorder keeps the status and body of every answer of an error
// status (4xx, 5xx) its client gets.
type errorRecorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	seen []string
}

func (r *errorRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if err != nil || resp.StatusCode < 400 {
		return resp, err
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(data))
	r.mu.Lock()
	r.seen = append(r.seen, fmt.Sprintf("%d %s", resp.StatusCode, data))
	r.mu.Unlock()
	return resp, nil
}

func (r *errorRecorder) answers() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen)
}

// newToken makes another API token for name and returns it with its id.
func (h *hubProcess) newToken(t *testing.T, name string) (token, id string) {
	t.Helper()
	code, body, err := h.api(http.MethodPost, userPath(name)+"/tokens", h.AdminToken, map[string]any{"note": "hub test"})
	if err != nil || code != http.StatusCreated {
		t.Fatalf("token for %s: %d %v %s", name, code, err, body)
	}
	var out struct{ Token, ID string }
	if err := json.Unmarshal(body, &out); err != nil || out.Token == "" || out.ID == "" {
		t.Fatalf("token for %s: %s", name, body)
	}
	tokens[name+" ("+out.ID+")"] = out.Token // TestMain checks that no log holds it
	return out.Token, out.ID
}

// What a token that no longer exists gets: at the hub URL and at the
// user's own URL, with the MCP session it opened while valid, a 403 and
// nothing run; the refused requests start nothing.
func refusedEverywhere(t *testing.T, user, token, sessionID string) {
	t.Helper()
	call := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"execute_code","arguments":{"path":"gone.ipynb","code":"open('/home/jovyan/work/after.txt','w').write('x')"}}}`
	for _, path := range []string{"/services/mcp", "/user/" + user + "/mcp"} {
		for _, body := range []string{initialize, call} {
			code, answer := post(t, path, "token "+token, sessionID, body)
			if code != http.StatusForbidden {
				t.Errorf("POST %s %.40s…: %d, want 403: %.300s", path, body, code, answer)
			}
			if path == "/services/mcp" && !strings.Contains(rpcError(answer), "does not accept this token (wrong, expired or revoked, or its user was deleted)") {
				t.Errorf("POST %s: the error does not say why: %.300s", path, answer)
			}
		}
	}
}

// A deleted user's token: her server stopped and the user deleted through
// the REST API, the token she used a moment ago is refused at the hub URL
// (403, "does not accept this token") and at /user/carol/mcp (her route is
// gone: the hub itself answers, 403), her MCP session included, and nothing
// starts: the user is not created again, no container appears.
func TestDeletedUserToken(t *testing.T) {
	if err := theHub.createUser("carol"); err != nil {
		t.Fatal(err)
	}
	token, _ := theHub.newToken(t, "carol")
	cs := connect(t, "/services/mcp", "token "+token)
	labtest.Call[map[string]any](t, cs, "create_notebook", map[string]any{"path": "gone.ipynb"})
	session := cs.ID()
	if err := theHub.stopServer("carol"); err != nil {
		t.Fatal(err)
	}
	if code, body, err := theHub.api(http.MethodDelete, "/users/carol", theHub.AdminToken, nil); err != nil || code != http.StatusNoContent {
		t.Fatalf("DELETE /users/carol: %d %v %s", code, err, body)
	}

	refusedEverywhere(t, "carol", token, session)

	if code, _, err := theHub.api(http.MethodGet, "/users/carol", theHub.AdminToken, nil); err != nil || code != http.StatusNotFound {
		t.Errorf("GET /users/carol after the refused requests: %d %v, want 404", code, err)
	}
	if id := container(theHub, "carol"); id != "" {
		t.Errorf("a container of carol's exists after the refused requests: %s", id)
	}
}

// A revoked token (DELETE /users/alice/tokens/<id>), used a moment before
// at both URLs, is refused at both, its MCP session included, while alice's
// server runs on: as soon as the caches of token checks let it, her
// server's and the router's (HUB_TOKEN_CACHE, 2 s in the test hub).
// Nothing it sends runs.
func TestRevokedToken(t *testing.T) {
	aliceRunning(t)
	token, id := theHub.newToken(t, "alice")
	var session string
	for _, path := range []string{"/services/mcp", "/user/alice/mcp"} {
		cs := connect(t, path, "token "+token)
		labtest.Call[map[string]any](t, cs, "list_notebooks", nil)
		session = cs.ID()
	}
	if code, body, err := theHub.api(http.MethodDelete, "/users/alice/tokens/"+id, theHub.AdminToken, nil); err != nil || code != http.StatusNoContent {
		t.Fatalf("DELETE the token: %d %v %s", code, err, body)
	}
	revoked := time.Now()

	// Either URL may answer from a cache for a moment.
	for _, path := range []string{"/services/mcp", "/user/alice/mcp"} {
		var last int
		err := poll(tokenCache+5*time.Second, func() (bool, error) {
			last, _ = post(t, path, "token "+token, "", initialize)
			return last == http.StatusForbidden, nil
		})
		if err != nil {
			t.Fatalf("the revoked token at %s: still %d %s after the revocation", path, last, time.Since(revoked).Round(time.Millisecond))
		}
		fmt.Fprintf(os.Stderr, "figure: a revoked token refused at %s %s after the revocation (HUB_TOKEN_CACHE %s)\n", path, time.Since(revoked).Round(10*time.Millisecond), tokenCache)
	}
	refusedEverywhere(t, "alice", token, session)

	if exec.Command("docker", "exec", theHub.Prefix+"-alice", "test", "-e", "/home/jovyan/work/after.txt").Run() == nil {
		t.Fatal("a request with the revoked token ran code in alice's server")
	}
	if s, err := theHub.serverState("alice"); err != nil || s != "ready" {
		t.Fatalf("alice's server after the revocation: %q %v", s, err)
	}
}

// workDir is the users' notebook directory in their containers.
const workDir = "/home/jovyan/work/"

// inContainer runs a command in user's container.
func (h *hubProcess) inContainer(user string, args ...string) error {
	return exec.Command("docker", append([]string{"exec", h.Prefix + "-" + user}, args...)...).Run()
}

// gatedCell is the source of a cell that runs until the test lets it end:
// it creates workDir/<name>-started, waits for workDir/<name>-go, then
// prints "<name> finished".
func (h *hubProcess) gatedCell(user, name string) string {
	for _, f := range []string{name + "-started", name + "-go"} {
		_ = h.inContainer(user, "rm", "-f", workDir+f)
	}
	return fmt.Sprintf("import os, time\nopen(%q, 'w').close()\nwhile not os.path.exists(%q):\n    time.sleep(0.05)\nprint(%q)",
		workDir+name+"-started", workDir+name+"-go", name+" finished")
}

// cellStarted waits until the gated cell name runs in user's kernel.
func (h *hubProcess) cellStarted(user, name string) error {
	if err := poll(time.Minute, func() (bool, error) {
		return h.inContainer(user, "test", "-e", workDir+name+"-started") == nil, nil
	}); err != nil {
		return fmt.Errorf("the %s cell did not start: %w", name, err)
	}
	return nil
}

// The hub restarts (SIGTERM, then started again) while two calls through
// <hub>/services/mcp are running, each a cell on its own kernel that waits
// for a file the test creates: one right after the signal, the other only
// once the hub is down. The hub stops its services before its proxy, and
// the router lets calls in flight finish for a while (HUB_MCP_DRAIN, long
// in this test's hub so that the first can end within it): the first
// call gets its result; the second, still running when the router may wait
// no longer, is handed back: answered with its execution handle, not cut
// (under the client's protocol, 2026-07-28, a cut stream cancels the call
// and interrupts its cell). Its cell runs on to the end, and get_execution
// through the hub URL, once the hub is back, has its result. The hub comes
// back with the users' servers running (cleanup_servers = False), and the
// next call through the hub URL reaches the same container and kernel,
// with what it held before.
func TestHubRestartMidCall(t *testing.T) {
	aliceRunning(t)
	before := container(theHub, "alice")
	cs := connect(t, "/services/mcp", "token "+tokens["alice"])
	gated := func(name string) string { return theHub.gatedCell("alice", name) }
	for _, nb := range []string{"restart.ipynb", "restart-short.ipynb"} {
		labtest.Call[map[string]any](t, cs, "create_notebook", map[string]any{"path": nb})
	}
	labtest.Call[map[string]any](t, cs, "execute_code", map[string]any{"path": "restart.ipynb", "code": "kept = 'from before the restart'"})

	// The calls in flight, from an MCP client whose HTTP answers of an
	// error status the test reads (the client keeps only the status).
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	rec := &errorRecorder{base: labtest.AuthClient("token " + tokens["alice"]).Transport}
	client := mcp.NewClient(&mcp.Implementation{Name: "hub-test", Version: "v0"}, nil)
	inFlight, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: theHub.URL + "/services/mcp", HTTPClient: &http.Client{Transport: rec}, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer inFlight.Close()
	type outcome struct {
		res *mcp.CallToolResult
		err error
	}
	run := func(path, source string) chan outcome {
		done := make(chan outcome, 1)
		go func() {
			res, err := inFlight.CallTool(ctx, &mcp.CallToolParams{Name: "insert_cell", Arguments: map[string]any{
				"path": path, "source": source, "execute": true, "timeout": 240,
			}})
			done <- outcome{res, err}
		}()
		return done
	}
	inContainer := func(args ...string) error { return theHub.inContainer("alice", args...) }
	long, short := run("restart.ipynb", gated("long")), run("restart-short.ipynb", gated("short"))
	for _, name := range []string{"long", "short"} {
		if err := theHub.cellStarted("alice", name); err != nil {
			t.Fatal(err)
		}
	}

	logFrom := len(theHub.Log())
	auditFrom := 0 // the audit trail's length when the router began to stop
	start := time.Now()
	var down time.Duration
	err = theHub.restart(func() error {
		// Once the router has begun to stop (its log says so), the short
		// cell may end: its call finishes while the router waits.
		if err := poll(30*time.Second, func() (bool, error) {
			return strings.Contains(string(theHub.Log()[logFrom:]), "letting the calls in flight finish"), nil
		}); err != nil {
			return fmt.Errorf("the router did not begin to stop: %w", err)
		}
		auditFrom = len(theHub.Audit())
		return inContainer("touch", workDir+"short-go")
	}, func() error {
		down = time.Since(start)
		return inContainer("touch", workDir+"long-go") // the long cell may end now
	})
	if err != nil {
		t.Fatalf("restart the hub: %v", err)
	}
	fmt.Fprintf(os.Stderr, "figure: hub restart: down after %s (the router's drain included), back after %s\n", down.Round(10*time.Millisecond), time.Since(start).Round(10*time.Millisecond))

	// The short call finished while the router waited for it (its audit
	// trail says so: a call answered 200 after it began to stop).
	select {
	case o := <-short:
		if o.err != nil || o.res.IsError || !strings.Contains(labtest.ResultText(o.res), "short finished") {
			t.Fatalf("the call that finished while the hub stopped: %v %v; want its result", o.err, o.res)
		}
	case <-ctx.Done():
		t.Fatal("the short call in flight hung until the test's bound (3 min)")
	}
	if stopping := string(theHub.Audit()[auditFrom:]); !strings.Contains(stopping, `"notebook":"restart-short.ipynb","status":200`) {
		t.Fatalf("the audit trail from the router's stop on shows no call answered while it stopped:\n%s", labtest.Tail([]byte(stopping), 4<<10))
	}
	// The long one was handed back with its execution handle.
	var handle struct {
		ExecutionID string `json:"execution_id"`
		Status      string `json:"status"`
	}
	var inserted struct { // insert_cell's result, its run under "execution"
		Execution *struct {
			ExecutionID string `json:"execution_id"`
			Status      string `json:"status"`
		} `json:"execution"`
	}
	select {
	case o := <-long:
		if o.err != nil || o.res.IsError || !strings.Contains(labtest.ResultText(o.res), "the hub's MCP service is restarting") {
			t.Fatalf("the long call in flight: %v %s (HTTP answers of an error status: %q); want it handed back with its handle", o.err, labtest.ResultText(o.res), rec.answers())
		}
		data, _ := json.Marshal(o.res.StructuredContent)
		if err := json.Unmarshal(data, &inserted); err == nil && inserted.Execution != nil {
			handle = *inserted.Execution
		}
		if handle.ExecutionID == "" || handle.Status != "running" {
			t.Fatalf("the handed-back call's result %s: want a running execution's id", data)
		}
	case <-ctx.Done():
		t.Fatal("the long call in flight hung until the test's bound (3 min)")
	}

	if s, err := theHub.serverState("alice"); err != nil || s != "ready" {
		t.Fatalf("alice's server after the hub's restart: %q %v, want ready", s, err)
	}
	after := connect(t, "/services/mcp", "token "+tokens["alice"])
	// The handed-back run went on to its end.
	res, err := after.CallTool(t.Context(), &mcp.CallToolParams{Name: "get_execution", Arguments: map[string]any{"execution_id": handle.ExecutionID, "timeout": 120}})
	if err != nil || res.IsError || !strings.Contains(labtest.ResultText(res), "long finished") {
		t.Fatalf("get_execution of the handed-back run after the restart: %v %s; want it finished", err, labtest.ResultText(res))
	}
	if who := whoami(t, after, "restart.ipynb"); who != "alice" {
		t.Fatalf("JUPYTERHUB_USER after the restart = %q, want alice", who)
	}
	// The same kernel: what it held before the restart is there.
	res, err = after.CallTool(t.Context(), &mcp.CallToolParams{Name: "execute_code", Arguments: map[string]any{"path": "restart.ipynb", "code": "print(kept)"}})
	if err != nil || res.IsError || !strings.Contains(labtest.ResultText(res), "from before the restart") {
		t.Fatalf("the kernel after the restart: %v %v", err, res)
	}
	if now := container(theHub, "alice"); now != before || now == "" {
		t.Fatalf("alice's container was %q before the restart, %q after: want the same one", before, now)
	}
}
