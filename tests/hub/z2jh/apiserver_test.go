package z2jh

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"maps"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/kube"
	release "helm.sh/helm/v4/pkg/release/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericclioptions"
)

// TestAPIServerAcceptsChart installs the chart with our values through
// Helm's install action, as an operator's `helm install` does, into a real
// kube-apiserver backed by a real etcd, and checks that every rendered
// object, hooks included, is then stored on the server. Helm applies them
// server-side with strict field validation, so an unknown field, a wrong
// type or an object the admission plugins refuse fails the install. There
// are no controllers or nodes: the objects are accepted, nothing runs.
func TestAPIServerAcceptsChart(t *testing.T) {
	bin := kubeTools(t)
	getter := startAPIServer(t, filepath.Join(bin, "kube-apiserver"), filepath.Join(bin, "etcd"))

	cfg := action.NewConfiguration()
	if err := cfg.Init(getter, namespace, "secret"); err != nil {
		t.Fatal(err)
	}
	kc, ok := cfg.KubeClient.(*kube.Client)
	if !ok {
		t.Fatalf("helm's kube client is a %T", cfg.KubeClient)
	}
	install := action.NewInstall(cfg)
	install.ReleaseName, install.Namespace, install.CreateNamespace = "jhub", namespace, true
	// The pre-install hooks wait for a Job (the image awaiter) that only a
	// controller and a node would complete; they are created below, by
	// Helm's client too, without the wait.
	install.DisableHooks = true
	install.WaitStrategy = kube.HookOnlyStrategy // the CLI's default
	install.Timeout = 2 * time.Minute
	r, err := install.RunWithContext(t.Context(), packaged(t), loadValues(t))
	if err != nil {
		t.Fatalf("helm install: the API server refused the chart: %v", err)
	}
	rel, ok := r.(*release.Release)
	if !ok {
		t.Fatalf("helm returned a %T, not a release", r)
	}
	var hooks []string
	for _, h := range rel.Hooks {
		hooks = append(hooks, h.Manifest)
	}
	hookObjs, err := kc.Build(strings.NewReader(strings.Join(hooks, "\n---\n")), true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kc.Create(hookObjs); err != nil {
		t.Fatalf("the API server refused a hook object: %v", err)
	}

	// What the server stores now, read back object by object.
	rendered, err := kc.Build(strings.NewReader(rel.Manifest+"\n---\n"+strings.Join(hooks, "\n---\n")), false)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, info := range rendered {
		if err := info.Get(); err != nil {
			t.Errorf("%s %s was not stored: %v", info.Mapping.GroupVersionKind.Kind, info.Name, err)
			continue
		}
		u, ok := info.Object.(*unstructured.Unstructured)
		if !ok {
			t.Fatalf("%s %s read back as a %T", info.Mapping.GroupVersionKind.Kind, info.Name, info.Object)
		}
		counts[u.GetKind()]++
		t.Logf("stored %s %s/%s: uid %s, resourceVersion %s%s", u.GetKind(), u.GetNamespace(), u.GetName(),
			u.GetUID(), u.GetResourceVersion(), serverFields(u))
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, counts[k]))
	}
	t.Logf("the API server accepted %d objects (%d hooks): %s", len(rendered), len(hookObjs), strings.Join(parts, ", "))
	if len(rendered) == 0 {
		t.Fatal("helm rendered nothing to apply")
	}

	status := action.NewStatus(cfg)
	got, err := status.Run(rel.Name)
	if err != nil {
		t.Fatalf("helm status: %v", err)
	}
	if s := got.(*release.Release).Info.Status; s != "deployed" {
		t.Errorf("helm status says the release is %s, want deployed", s)
	}
}

// serverFields are what the API server filled in on an object that it
// allocates or defaults, for the log.
func serverFields(u *unstructured.Unstructured) string {
	switch u.GetKind() {
	case "Service":
		ip, _, _ := unstructured.NestedString(u.Object, "spec", "clusterIP")
		return ", clusterIP " + ip
	case "Deployment", "DaemonSet", "StatefulSet":
		sa, _, _ := unstructured.NestedString(u.Object, "spec", "template", "spec", "serviceAccountName")
		policy, _, _ := unstructured.NestedString(u.Object, "spec", "template", "spec", "dnsPolicy")
		return ", serviceAccount " + sa + ", dnsPolicy " + policy
	}
	return ""
}

// The Go modules the tests build their Kubernetes tools from: Kubernetes
// and etcd, and CoreDNS; and the pods' sandbox process, from the project's.
const (
	kubeModule    = "kube"
	corednsModule = "coredns"
	pausePackage  = "./cluster/pause"
)

// kubeTools builds etcd, the Kubernetes servers, the kubelet, kube-proxy and
// kubectl from the kube module, CoreDNS from its module and the pause
// process into a cache directory named by the pinned version and a hash of
// what they are built from, so a machine builds them once: later runs, and
// CI runs on the same machine, find them there. It returns that directory.
func kubeTools(t *testing.T) string {
	t.Helper()
	mod := readFile(t, kubeModule+"/go.mod")
	m := regexp.MustCompile(`(?m)^\s*k8s\.io/kubernetes (v(\d+)\.(\d+)\.\d+)\b`).FindSubmatch(mod)
	if m == nil {
		t.Fatalf("%s/go.mod requires no k8s.io/kubernetes version", kubeModule)
	}
	version, major, minor := string(m[1]), string(m[2]), string(m[3])
	h := sha256.New()
	for _, f := range []string{kubeModule + "/go.mod", kubeModule + "/go.sum", corednsModule + "/go.mod", corednsModule + "/go.sum",
		corednsModule + "/main.go", pausePackage + "/main.go"} {
		h.Write(readFile(t, f))
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(cache, "jupyter-mcp-sidecar", "kube-"+version+"-"+hex.EncodeToString(h.Sum(nil)[:6]))
	tools := []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "kubectl", "coredns", "pause"}
	if !slices.ContainsFunc(tools, func(tool string) bool { return !isFile(filepath.Join(dir, tool)) }) {
		t.Logf("etcd, Kubernetes %s, CoreDNS: built before, in %s", version, dir)
		return dir
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".build-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	// The version the server reports is Helm's check of the chart's
	// kubeVersion; a module build leaves it at v0.0.0 otherwise.
	ldflags := "-s -w -X k8s.io/component-base/version.gitVersion=" + version +
		" -X k8s.io/component-base/version.gitMajor=" + major + " -X k8s.io/component-base/version.gitMinor=" + minor
	start := time.Now()
	// build builds packages into tmp; static (no cgo) for what runs from
	// an image of its own binary alone.
	build := func(dir string, static bool, pkgs ...string) {
		cmd := exec.CommandContext(t.Context(), "go", append([]string{"build", "-trimpath", "-ldflags", ldflags, "-o", tmp + "/"}, pkgs...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
		if static {
			cmd.Env = append(cmd.Env, "CGO_ENABLED=0")
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", strings.Join(pkgs, " "), err, out)
		}
	}
	build(kubeModule, false, "go.etcd.io/etcd/server/v3", "k8s.io/kubernetes/cmd/kube-apiserver",
		"k8s.io/kubernetes/cmd/kube-controller-manager", "k8s.io/kubernetes/cmd/kube-scheduler",
		"k8s.io/kubernetes/cmd/kubelet", "k8s.io/kubernetes/cmd/kube-proxy", "k8s.io/kubernetes/cmd/kubectl")
	// etcd's binary is named after its package, go.etcd.io/etcd/server/v3.
	if err := os.Rename(filepath.Join(tmp, "server"), filepath.Join(tmp, "etcd")); err != nil {
		t.Fatal(err)
	}
	build(corednsModule, true, ".")
	build(".", true, pausePackage)
	if err := os.Rename(tmp, dir); err != nil && !isFile(filepath.Join(dir, "pause")) {
		t.Fatal(err)
	}
	t.Logf("built etcd, Kubernetes %s and CoreDNS into %s in %s", version, dir, time.Since(start).Round(time.Second))
	return dir
}

func isFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// startAPIServer starts etcd and kube-apiserver on loopback ports, serving
// TLS with a certificate made here and admitting one static token of the
// group system:masters, with RBAC and the default admission plugins. It
// returns a Helm client configuration for that server and the chart's
// namespace; both processes stop
// when the test ends.
func startAPIServer(t *testing.T, apiserverBin, etcdBin string) genericclioptions.RESTClientGetter {
	t.Helper()
	dir := t.TempDir()
	etcdPort, peerPort, port := freePort(t), freePort(t), freePort(t)
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	run(t, dir, "etcd", etcdBin,
		"--name=test", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=test="+peerURL)

	certPEM, keyPEM := selfSignedCert(t)
	_, saKeyPEM := selfSignedCert(t)
	token := randomHex(t)
	files := map[string][]byte{
		"serving.crt": certPEM,
		"serving.key": keyPEM,
		"sa.key":      saKeyPEM,
		"tokens.csv":  []byte(token + ",admin,admin,system:masters\n"),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	api := run(t, dir, "kube-apiserver", apiserverBin,
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", port),
		"--advertise-address=127.0.0.1",
		// No controllers read the kubernetes Service's endpoints, and a
		// loopback address is not a valid endpoint.
		"--endpoint-reconciler-type=none",
		"--tls-cert-file="+filepath.Join(dir, "serving.crt"),
		"--tls-private-key-file="+filepath.Join(dir, "serving.key"),
		"--cert-dir="+dir,
		"--token-auth-file="+filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+filepath.Join(dir, "sa.key"),
		"--service-account-signing-key-file="+filepath.Join(dir, "sa.key"),
		"--service-cluster-ip-range=10.96.0.0/16")

	server := fmt.Sprintf("https://127.0.0.1:%d", port)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, server+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if api.exited() || time.Now().After(deadline) {
			t.Fatalf("kube-apiserver is not ready at %s (last: %v); the end of its log:\n%s", server, statusOf(resp, err), api.tail())
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("kube-apiserver ready at %s", server)

	kubeconfig := filepath.Join(dir, "kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {server: %q, certificate-authority-data: %s}
users:
- name: admin
  user: {token: %q}
contexts:
- name: test
  context: {cluster: test, user: admin}
current-context: test
`, server, base64.StdEncoding.EncodeToString(certPEM), token)
	if err := os.WriteFile(kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return helmGetter(kubeconfig)
}

// helmGetter is Helm's client configuration for the cluster of kubeconfig
// and the chart's namespace, as `helm --kubeconfig --namespace` make it.
func helmGetter(kubeconfig string) genericclioptions.RESTClientGetter {
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &kubeconfig
	ns := namespace
	flags.Namespace = &ns // where the chart's objects go
	return flags
}

func statusOf(resp *http.Response, err error) string {
	if err != nil {
		return err.Error()
	}
	return resp.Status
}

// process is a server the test started, its output kept in a file.
type process struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tail is the end of the process's output.
func (p *process) tail() string {
	b, _ := os.ReadFile(p.log)
	return string(labtest.Tail(b, 4000))
}

// run starts a server in the background and stops it when the test ends.
func run(t *testing.T, dir, name, bin string, args ...string) *process {
	t.Helper()
	p := &process{log: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	out, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = out, out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { p.cmd.Wait(); out.Close(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("the end of %s's log:\n%s", name, p.tail())
		}
	})
	return p
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// selfSignedCert is a certificate for 127.0.0.1 and localhost that is its
// own authority, and its key, in PEM.
func selfSignedCert(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	var c, k bytes.Buffer
	pem.Encode(&c, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	pem.Encode(&k, &pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	return c.Bytes(), k.Bytes()
}
