package z2jh

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/cli/values"
	"helm.sh/helm/v4/pkg/getter"
	"helm.sh/helm/v4/pkg/kube"
)

// clusterValues is the second --values file for the one-node cluster.
const clusterValues = "cluster/values.yaml"

// imageTag is the tag of every image this test builds: its own, so that
// the other tests' images stay as they are.
const imageTag = "z2jh-test"

// TestClusterServesAlice brings up a one-node cluster (cluster/up.sh: the
// kubelet, containerd, the CNI plugins, kube-proxy and CoreDNS beside the
// API server), installs the chart with our values on it with Helm, and
// goes through it as a user does: alice's first MCP call at
// <hub>/services/mcp has the hub start her pod from our image and runs a
// cell on her kernel there; bob's token does not reach her server.
func TestClusterServesAlice(t *testing.T) {
	bin := kubeTools(t)
	images := clusterImages(t, bin)
	kubeconfig := upCluster(t, bin, images)

	adminToken := randomHex(t)
	vals := clusterChartValues(t, images, adminToken)
	persistentVolumes(t, bin, kubeconfig, 2)

	cfg := action.NewConfiguration()
	if err := cfg.Init(helmGetter(kubeconfig), namespace, "secret"); err != nil {
		t.Fatal(err)
	}
	install := action.NewInstall(cfg)
	install.ReleaseName, install.Namespace, install.CreateNamespace = "jhub", namespace, true
	install.WaitStrategy = kube.StatusWatcherStrategy // helm install --wait
	install.Timeout = 3 * time.Minute
	start := time.Now()
	if _, err := install.RunWithContext(t.Context(), packaged(t), vals); err != nil {
		kubectl(t, bin, kubeconfig, "-n", namespace, "get", "pods,pvc,events", "-o", "wide")
		t.Fatalf("helm install --wait: %v", err)
	}
	t.Logf("helm install --wait: every workload ready after %s", time.Since(start).Round(time.Second))
	kubectl(t, bin, kubeconfig, "-n", namespace, "get", "pods", "-o", "wide")

	hub := "http://" + kubectl(t, bin, kubeconfig, "-n", namespace, "get", "service", "proxy-public", "-o", "jsonpath={.spec.clusterIP}")
	tokens := map[string]string{}
	for _, user := range []string{"alice", "bob"} {
		hubAPI(t, hub, adminToken, http.MethodPost, "/users/"+user, nil)
		var tok struct{ Token string }
		hubAPI(t, hub, adminToken, http.MethodPost, "/users/"+user+"/tokens", &tok)
		tokens[user] = tok.Token
	}

	start = time.Now()
	c := mcp.NewClient(&mcp.Implementation{Name: "z2jh-test", Version: "v0"}, nil)
	cs, err := c.Connect(t.Context(), &mcp.StreamableClientTransport{
		Endpoint: hub + "/services/mcp", HTTPClient: labtest.AuthClient("token " + tokens["alice"]), MaxRetries: -1,
	}, nil)
	if err != nil {
		kubectl(t, bin, kubeconfig, "-n", namespace, "get", "pods,pvc,events", "-o", "wide")
		t.Fatalf("alice's MCP session at %s/services/mcp: %v", hub, err)
	}
	defer cs.Close()
	t.Logf("alice's initialize at <hub>/services/mcp answered after %s", time.Since(start).Round(100*time.Millisecond))
	labtest.Call[map[string]any](t, cs, "create_notebook", map[string]any{"path": "k8s.ipynb"})
	out := runCell(t, cs, "k8s.ipynb", `import os, socket; print("user=" + os.environ["JUPYTERHUB_USER"], "host=" + socket.gethostname())`)
	if !strings.Contains(out, "user=alice host=jupyter-alice") {
		t.Fatalf("the cell printed %q, want alice's user in her pod jupyter-alice", out)
	}
	t.Logf("alice's cell ran in her pod %s after the call: %s", time.Since(start).Round(100*time.Millisecond), out)
	kubectl(t, bin, kubeconfig, "-n", namespace, "get", "pod", "jupyter-alice", "-o",
		"custom-columns=POD:.metadata.name,IMAGE:.spec.containers[0].image,PULL:.spec.containers[0].imagePullPolicy,NODE:.spec.nodeName,IP:.status.podIP,PHASE:.status.phase")

	// bob's token, at alice's server: refused there, in her session too,
	// and nothing of his ran; alice's own token, the same request, passes.
	if code, body := postMCP(t, hub+"/user/alice/mcp", "token "+tokens["alice"], "", initialize); code != http.StatusOK {
		t.Errorf("alice's initialize at /user/alice/mcp: %d, want 200: %.300s", code, body)
	}
	intrude := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"execute_code","arguments":{"path":"k8s.ipynb","code":"open('intruder.txt','w').write('x')"}}}`
	for _, path := range []string{"/user/alice/mcp", "/user/alice/mcp/"} {
		if code, body := postMCP(t, hub+path, "token "+tokens["bob"], "", initialize); code != http.StatusForbidden {
			t.Errorf("bob's initialize at %s: %d, want 403: %.300s", path, code, body)
		}
		if code, body := postMCP(t, hub+path, "token "+tokens["bob"], cs.ID(), intrude); code != http.StatusForbidden {
			t.Errorf("bob's tools/call in alice's session at %s: %d, want 403: %.300s", path, code, body)
		}
	}
	if out := runCell(t, cs, "k8s.ipynb", `import os; print("intruder", os.path.exists("intruder.txt"))`); !strings.Contains(out, "intruder False") {
		t.Errorf("after bob's calls alice's server has intruder.txt: %s", out)
	}
}

// initialize is an MCP client's first request.
const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"z2jh-test","version":"0"}}}`

// postMCP posts one JSON-RPC message to an MCP endpoint as a client does
// and returns the status and body.
func postMCP(t *testing.T, url, auth, session, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// runCell runs code on the session's kernel in notebook path and returns
// what the tool answered.
func runCell(t *testing.T, cs *mcp.ClientSession, path, code string) string {
	t.Helper()
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "execute_code", Arguments: map[string]any{
		"path": path, "code": code, "timeout": 120,
	}})
	if err != nil {
		t.Fatalf("execute_code: %v", err)
	}
	if res.IsError {
		t.Fatalf("execute_code: %s", labtest.ResultText(res))
	}
	return strings.TrimSpace(labtest.ResultText(res))
}

// clusterImages builds the images the cluster and the chart run, all
// tagged imageTag: the project's, the hub's and the proxy's
// (cluster/images), and the pause and CoreDNS images of the binaries in
// bin. It returns them by name: project, hub, proxy, pause, coredns.
func clusterImages(t *testing.T, bin string) map[string]string {
	t.Helper()
	start := time.Now()
	images := map[string]string{
		"project": projectImage(t) + ":" + imageTag,
		"hub":     "jupyter-mcp-sidecar-z2jh-hub:" + imageTag,
		"proxy":   "jupyter-mcp-sidecar-z2jh-proxy:" + imageTag,
		"pause":   "localhost/pause:" + imageTag,
		"coredns": "localhost/coredns:" + imageTag,
	}
	name, tag, _ := strings.Cut(images["project"], ":")
	if err := labtest.BuildImage(t.Context(), name, tag); err != nil {
		t.Fatal(err)
	}
	runtime := "RUNTIME_IMAGE=" + labtest.BaseImages()["RUNTIME_IMAGE"]
	for _, name := range []string{"hub", "proxy"} {
		docker(t, "build", "--quiet", "--build-arg", runtime, "--tag", images[name], "cluster/images/"+name)
	}
	// A binary alone in an image, as the upstream images of both are.
	for _, name := range []string{"pause", "coredns"} {
		dir := t.TempDir()
		data, err := os.ReadFile(filepath.Join(bin, name))
		if err != nil {
			t.Fatal(err)
		}
		dockerfile := fmt.Sprintf("FROM scratch\nCOPY %s /%s\nENTRYPOINT [\"/%s\"]\n", name, name, name)
		if os.WriteFile(filepath.Join(dir, name), data, 0o755) != nil || os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644) != nil {
			t.Fatal("writing the build context of " + name)
		}
		docker(t, "build", "--quiet", "--tag", images[name], dir)
	}
	t.Logf("images built in %s", time.Since(start).Round(time.Second))
	return images
}

func docker(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0") // the classic builder: no buildx here
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, labtest.Tail(out, 4000))
	}
}

// upCluster runs cluster/up.sh with the tools in bin and the images, logs
// its steps, and stops the cluster when the test ends. It returns the
// cluster's kubeconfig.
func upCluster(t *testing.T, bin string, images map[string]string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the one-node cluster needs root (a kubelet, containerd, iptables): run as root (CI does)")
	}
	for _, cmd := range []string{"containerd", "ctr", "runc", "iptables", "conntrack", "/usr/lib/cni/bridge"} {
		if _, err := exec.LookPath(cmd); err != nil {
			t.Fatalf("the one-node cluster needs %s: apt-get install containerd runc iptables conntrack containernetworking-plugins (.ci/run does)", cmd)
		}
	}
	dir := t.TempDir()
	cmd := exec.CommandContext(t.Context(), "bash", "cluster/up.sh", bin, dir)
	cmd.Env = append(os.Environ(), "PAUSE_IMAGE="+images["pause"], "COREDNS_IMAGE="+images["coredns"],
		"PROBE_IMAGE="+images["project"], "IMAGES="+images["hub"]+" "+images["proxy"])
	t.Cleanup(func() {
		start := time.Now()
		out, err := exec.Command("bash", filepath.Join(dir, "down.sh")).CombinedOutput()
		if err != nil {
			t.Errorf("stopping the cluster: %v\n%s", err, out)
		}
		t.Logf("cluster stopped in %s", time.Since(start).Round(time.Second))
	})
	out, err := cmd.CombinedOutput()
	t.Logf("cluster/up.sh:\n%s", out)
	if err != nil {
		t.Fatalf("cluster/up.sh: %v", err)
	}
	return filepath.Join(dir, "kubeconfig")
}

// clusterChartValues are our values with cluster/values.yaml over them, as
// `helm install --values values.yaml --values cluster/values.yaml` merges
// them, and this test's images and hub API token.
func clusterChartValues(t *testing.T, images map[string]string, adminToken string) map[string]any {
	t.Helper()
	vals, err := (&values.Options{ValueFiles: []string{valuesPath, clusterValues}}).MergeValues(getter.Providers{})
	if err != nil {
		t.Fatal(err)
	}
	setImage := func(o object, image string) {
		o["name"], o["tag"], _ = strings.Cut(image, ":")
	}
	setImage(object(vals).obj("singleuser.image"), images["project"])
	setImage(object(vals).obj("hub.image"), images["hub"])
	setImage(object(vals).obj("proxy.chp.image"), images["proxy"])
	hub := object(vals).obj("hub")
	// The places marked IMAGE in values.yaml: the router beside the hub.
	for _, c := range hub["extraContainers"].([]any) {
		c.(map[string]any)["image"], c.(map[string]any)["imagePullPolicy"] = images["project"], "Never"
	}
	hub["services"].(map[string]any)["test-admin"] = map[string]any{"apiToken": adminToken}
	return vals
}

// persistentVolumes makes n host-path volumes for the claims of the hub's
// database and the users' notebooks: the one-node cluster has no
// provisioner.
func persistentVolumes(t *testing.T, bin, kubeconfig string, n int) {
	t.Helper()
	var docs []string
	for i := range n {
		dir := filepath.Join(t.TempDir(), "pv")
		if err := os.MkdirAll(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		os.Chmod(dir, 0o777) // the pods' users are not root
		docs = append(docs, fmt.Sprintf(`apiVersion: v1
kind: PersistentVolume
metadata: {name: pv-%d}
spec:
  capacity: {storage: 10Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Delete
  hostPath: {path: %q}
`, i, dir))
	}
	cmd := exec.Command(filepath.Join(bin, "kubectl"), "--kubeconfig", kubeconfig, "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(strings.Join(docs, "---\n"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
}

// kubectl runs bin's kubectl on the cluster, logs and returns its output.
func kubectl(t *testing.T, bin, kubeconfig string, args ...string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(bin, "kubectl"), append([]string{"--kubeconfig", kubeconfig}, args...)...).CombinedOutput()
	t.Logf("kubectl %s:\n%s", strings.Join(args, " "), out)
	if err != nil {
		t.Errorf("kubectl %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

// hubAPI calls the hub's REST API with the test's admin token and decodes
// the answer into out.
func hubAPI(t *testing.T, hub, token, method, path string, out any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, hub+"/hub/api"+path, bytes.NewReader([]byte("{}")))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "token "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %s: %.300s", method, path, resp.Status, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}
