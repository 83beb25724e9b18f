package integration

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

// The sidecar reaches a kernel the lab started on the kernel's own ZeroMQ
// sockets (the server then counts no websocket of ours to it) and, with
// JUPYTER_MCP_KERNEL_TRANSPORT=websocket, through the server's kernel
// websocket. Both run code, answer input(), run again after restart_kernel
// and after a restart by someone else, report a kernel that dies mid-run,
// run on the kernel the server starts in its place, and say so when the
// server stops restarting one.
func TestKernelTransports(t *testing.T) {
	for _, tc := range []struct {
		name        string
		env         []string
		connections int // the server's count of websockets to the kernel
	}{
		{"zmq", nil, 0},
		{"websocket", []string{"JUPYTER_MCP_KERNEL_TRANSPORT=websocket"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lab := shared
			if tc.env != nil {
				var err error
				lab, err = labtest.Start(sidecarBin, filepath.Join(labsDir, "transport-"+tc.name), "transport-token", tc.env...)
				if err != nil {
					t.Fatal(err)
				}
				defer lab.Stop()
			}
			cs, err := lab.Connect(t.Context(), "mcp", "token "+lab.Token)
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			nb := "transport-" + tc.name + ".ipynb"
			labtest.Call[notebookRef](t, cs, "create_notebook", map[string]any{"path": nb})

			run := func(code string) (execOut, string) {
				t.Helper()
				res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "execute_code", Arguments: map[string]any{"path": nb, "code": code}})
				if err != nil || res.IsError {
					t.Fatalf("execute_code %q: %v %s", code, err, labtest.ResultText(res))
				}
				return decode[execOut](t, res), labtest.ResultText(res)
			}
			if out, text := run("print(6*7)"); out.Status != "ok" || !strings.Contains(text, "42") {
				t.Fatalf("print(6*7): %+v %s", out, text)
			}
			if got := kernelConnections(t, lab, nb); got != tc.connections {
				t.Errorf("the server counts %d websockets to the kernel, want %d", got, tc.connections)
			}

			asked, _ := run("print('hello', input('Name? '))")
			if asked.Status != "needs_input" || asked.InputPrompt != "Name? " {
				t.Fatalf("input(): %+v, want needs_input", asked)
			}
			res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "send_input", Arguments: map[string]any{"execution_id": asked.ExecutionID, "text": "Ada"}})
			if err != nil || res.IsError || !strings.Contains(labtest.ResultText(res), "hello Ada") {
				t.Fatalf("send_input: %v %s", err, labtest.ResultText(res))
			}

			// A restart, then a death (after which the server restarts the
			// kernel itself). Not the other way round: restart_kernel right
			// after a death kills the kernel the server is starting, and
			// a request sent through the websocket then can be lost.
			labtest.Call[map[string]any](t, cs, "restart_kernel", map[string]any{"path": nb})
			if out, text := run("x = 6*7\nprint(x)"); out.Status != "ok" || !strings.Contains(text, "42") {
				t.Fatalf("after restart: %+v %s", out, text)
			}
			// A person restarts the kernel in JupyterLab (the same REST
			// call, which the server tells a kernel websocket nothing of).
			restartKernel(t, lab, kernelID(t, lab, nb))
			if out, text := run("print('x' in dir(), 6*7)"); out.Status != "ok" || !strings.Contains(text, "False 42") {
				t.Fatalf("after a restart by someone else: %+v %s", out, text)
			}
			// A run still going when a person restarts the kernel ends as
			// if the kernel died (on the websocket, once the server has
			// reported the new kernel idle at two of the run's checks, 5 s
			// apart, with the run silent in between), instead of holding
			// every later run on this kernel behind it.
			res, err = cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "execute_code", Arguments: map[string]any{"path": nb, "code": "import time\ntime.sleep(600)", "timeout": 1}})
			if err != nil || res.IsError {
				t.Fatalf("a long run: %v %s", err, labtest.ResultText(res))
			}
			if long := decode[execOut](t, res); long.Status != "running" {
				t.Fatalf("a long run after 1 s: %+v, want running", long)
			} else {
				restartKernel(t, lab, kernelID(t, lab, nb))
				res, err = cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "get_execution", Arguments: map[string]any{"execution_id": long.ExecutionID, "timeout": 30}})
				if err != nil || res.IsError {
					t.Fatalf("get_execution: %v %s", err, labtest.ResultText(res))
				}
				if out := decode[execOut](t, res); out.Status != "kernel_died" {
					t.Fatalf("a run whose kernel someone restarted: %+v %s, want kernel_died", out, labtest.ResultText(res))
				}
			}
			if died, text := run("import os\nos.kill(os.getpid(), 9)"); died.Status != "kernel_died" {
				t.Fatalf("a kernel killed mid-run: %+v %s", died, text)
			}
			if out, text := run("print('x' in dir())"); out.Status != "ok" || !strings.Contains(text, "False") {
				t.Fatalf("after the kernel died and the server restarted it: %+v %s", out, text)
			}
			// Restarted kernels are reached the same way (the server's
			// state reads "idle" before a restarted kernel listens).
			if got := kernelConnections(t, lab, nb); got != tc.connections {
				t.Errorf("after the restarts the server counts %d websockets to the kernel, want %d", got, tc.connections)
			}

			// A kernel that dies again and again: the server restarts it
			// restart_limit times (5), then removes it. A run that meets
			// the removed kernel says so (on its own sockets the sidecar
			// sees a death before the server does), and the next run
			// starts a new kernel.
			old := kernelID(t, lab, nb)
			for deaths := 1; kernelExists(t, lab, old); deaths++ {
				out, text := run("import os\nos.kill(os.getpid(), 9)")
				if out.Status == "failed" && strings.Contains(text, "no longer exists: it was shut down, or it died again and again") {
					break
				}
				if out.Status != "kernel_died" || deaths == 10 {
					t.Fatalf("kill number %d: %+v %s; want kernel_died until the server removes the kernel, or a run that says it no longer exists", deaths, out, text)
				}
			}
			if out, text := run("print(6*7)"); out.Status != "ok" || !strings.Contains(text, "42") {
				t.Fatalf("after the kernel was gone: %+v %s", out, text)
			}
			if kernelID(t, lab, nb) == old {
				t.Error("the run after the kernel was gone did not start a new kernel")
			}
		})
	}
}

// A kernel whose own sockets do not answer (here its connection file names
// ports nothing listens on, as for a kernel on another host) is reached
// through the server's websocket instead.
func TestKernelTransportFallsBack(t *testing.T) {
	cs := session(t)
	nb := "transport-fallback.ipynb"
	labtest.Call[notebookRef](t, cs, "create_notebook", map[string]any{"path": nb})
	// A first run starts the kernel (it reads its connection file as it
	// starts, and would take the ports written there).
	labtest.Call[execOut](t, cs, "execute_code", map[string]any{"path": nb, "code": "1"})
	if got := kernelConnections(t, shared, nb); got != 0 {
		t.Fatalf("the server counts %d websockets to the kernel before the change, want 0", got)
	}
	id := kernelID(t, shared, nb)
	file := filepath.Join(shared.RuntimeDir, "kernel-"+id+".json")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var info map[string]any
	if err := json.Unmarshal(data, &info); err != nil {
		t.Fatal(err)
	}
	closed := closedPort(t)
	for _, k := range []string{"shell_port", "iopub_port", "stdin_port"} {
		info[k] = closed
	}
	data, _ = json.Marshal(info)
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	// A new sidecar process reads the file again.
	old := shared.SidecarPID()
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the killed sidecar has exited", func() bool { return shared.SidecarPID() != old })

	res := labtest.Call[execOut](t, session(t), "execute_code", map[string]any{"path": nb, "code": "print(6*7)"})
	if res.Status != "ok" {
		t.Fatalf("execute_code: %+v", res)
	}
	if got := kernelConnections(t, shared, nb); got != 1 {
		t.Errorf("the server counts %d websockets to the kernel, want the sidecar's 1", got)
	}
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// kernelConnections is the server's count of websocket connections to the
// kernel of the notebook at rel.
func kernelConnections(t *testing.T, lab *labtest.Lab, rel string) int {
	return sessionKernel(t, lab, rel).Connections
}

func kernelID(t *testing.T, lab *labtest.Lab, rel string) string {
	return sessionKernel(t, lab, rel).ID
}

type kernelModel struct {
	ID          string `json:"id"`
	Connections int    `json:"connections"`
}

// restartKernel restarts kernel id as JupyterLab does.
func restartKernel(t *testing.T, lab *labtest.Lab, id string) {
	t.Helper()
	resp, err := labtest.AuthClient("token "+lab.Token).Post(lab.URL+"api/kernels/"+id+"/restart", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("restart kernel %s: %s", id, resp.Status)
	}
}

// kernelExists is whether the server still has kernel id.
func kernelExists(t *testing.T, lab *labtest.Lab, id string) bool {
	t.Helper()
	resp, err := labtest.AuthClient("token " + lab.Token).Get(lab.URL + "api/kernels/" + id)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET api/kernels/%s: %s", id, resp.Status)
	}
	return resp.StatusCode == http.StatusOK
}

// sessionKernel is the kernel of the notebook at rel, as the Sessions API
// lists it.
func sessionKernel(t *testing.T, lab *labtest.Lab, rel string) kernelModel {
	t.Helper()
	resp, err := labtest.AuthClient("token " + lab.Token).Get(lab.URL + "api/sessions")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sessions []struct {
		Path   string      `json:"path"`
		Kernel kernelModel `json:"kernel"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&sessions); err != nil {
		t.Fatal(err)
	}
	for _, s := range sessions {
		if s.Path == rel {
			return s.Kernel
		}
	}
	t.Fatalf("no session for %s", rel)
	return kernelModel{}
}
