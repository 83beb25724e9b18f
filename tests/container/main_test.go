// Package container tests the image built from the repository's Dockerfile:
// JupyterLab and the sidecar in one container, driven through the
// container's published port with the go-sdk MCP client, and framed in
// headless Chromium.
//
// The image is built with testcontainers-go on the local base images of
// `make base-images` (no image registry is needed); containers publish their
// port on 127.0.0.1 only.
package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

const (
	labPort   = "8888/tcp"
	imageRepo = "jupyter-mcp-sidecar"
	imageTag  = "container-test"
	workDir   = "/home/jovyan/work"
)

var (
	image  = imageRepo + ":" + imageTag
	shared *lab // a lab with default settings, shared by the tests that only read or add files
	// framePage serves pages that frame a lab from another origin (see embed_test.go);
	// it starts first, so that a lab can be told to allow its origin.
	framePage *framer
)

func TestMain(m *testing.M) {
	// Ryuk, the reaper container, would have to be pulled from a registry;
	// every container here is terminated by the test that starts it.
	os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	// Ports are published on 127.0.0.1 only; without this, testcontainers
	// would use the bridge gateway when the tests themselves run in a container.
	if os.Getenv("TESTCONTAINERS_HOST_OVERRIDE") == "" {
		os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	}
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "container tests:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	ctx := context.Background()
	if err := labtest.BuildImage(ctx, imageRepo, imageTag); err != nil {
		return 0, err
	}
	var err error
	if framePage, err = startFramer(); err != nil {
		return 0, err
	}
	defer framePage.Close()
	if shared, err = startLab(ctx, labOptions{token: randomToken()}); err != nil {
		return 0, err
	}
	defer shared.Terminate()
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "---- log of the shared container (last 8 KiB) ----\n%s\n", labtest.Tail([]byte(shared.Logs()), 8<<10))
	}
	return code, nil
}

// lab is a running container of the image.
type lab struct {
	c     *testcontainers.DockerContainer
	URL   string // http://127.0.0.1:<port>/
	Token string
	// Started is when the container was asked to start; Ready when its API answered.
	Started, Ready time.Time
}

type labOptions struct {
	token  string            // JUPYTER_TOKEN; empty: the image generates one
	env    map[string]string // more environment
	volume string            // a named volume mounted at workDir
}

// startLab starts a container of the image and waits until Jupyter answers.
func startLab(ctx context.Context, o labOptions) (*lab, error) {
	env := map[string]string{}
	for k, v := range o.env {
		env[k] = v
	}
	if o.token != "" {
		env["JUPYTER_TOKEN"] = o.token
	}
	req := testcontainers.ContainerRequest{
		Image:        image,
		Env:          env,
		ExposedPorts: []string{labPort},
		HostConfigModifier: func(hc *container.HostConfig) {
			// A random free port on loopback only.
			hc.PortBindings = network.PortMap{network.MustParsePort(labPort): {{HostIP: netip.MustParseAddr("127.0.0.1")}}}
			if o.volume != "" {
				hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeVolume, Source: o.volume, Target: workDir})
			}
		},
		// GET /api needs no token: it answers once the server is up.
		WaitingFor: wait.ForHTTP("/api").WithPort(labPort).
			WithStartupTimeout(2 * time.Minute).WithPollInterval(100 * time.Millisecond),
	}
	started := time.Now()
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: req, Started: true})
	dc, _ := c.(*testcontainers.DockerContainer)
	if err != nil {
		l := &lab{c: dc}
		msg := fmt.Errorf("start container: %w\n%s", err, labtest.Tail([]byte(l.Logs()), 4<<10))
		l.Terminate()
		return nil, msg
	}
	port, err := dc.MappedPort(ctx, labPort)
	if err != nil {
		_ = dc.Terminate(ctx)
		return nil, err
	}
	return &lab{c: dc, URL: fmt.Sprintf("http://127.0.0.1:%d/", port.Num()), Token: o.token, Started: started, Ready: time.Now()}, nil
}

// Terminate stops and removes the container (not its named volume).
func (l *lab) Terminate() {
	if l != nil && l.c != nil {
		_ = l.c.Terminate(context.Background(), testcontainers.StopTimeout(10*time.Second))
	}
}

// Logs is the container's output so far.
func (l *lab) Logs() string {
	if l == nil || l.c == nil {
		return ""
	}
	r, err := l.c.Logs(context.Background())
	if err != nil {
		return err.Error()
	}
	defer r.Close()
	data, _ := io.ReadAll(r)
	return string(data)
}

// Exec runs a command in the container and returns its exit code and output.
func (l *lab) Exec(ctx context.Context, cmd ...string) (int, string, error) {
	code, r, err := l.c.Exec(ctx, cmd, tcexec.Multiplexed())
	if err != nil {
		return code, "", err
	}
	out, err := io.ReadAll(r)
	return code, string(out), err
}

// Connect opens an MCP session at <lab>/mcp sending "Authorization: <auth>".
func (l *lab) Connect(ctx context.Context, auth string) (*mcp.ClientSession, error) {
	c := mcp.NewClient(&mcp.Implementation{Name: "container-test", Version: "v0"}, nil)
	return c.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:   l.URL + "mcp",
		HTTPClient: labtest.AuthClient(auth),
		MaxRetries: -1,
	}, nil)
}

// session opens an authenticated MCP session, closed at the end of the test.
func (l *lab) session(t testing.TB) *mcp.ClientSession {
	t.Helper()
	cs, err := l.Connect(t.Context(), "token "+l.Token)
	if err != nil {
		t.Fatalf("connect to %smcp: %v", l.URL, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// status is the HTTP status of a POST to url with an optional Authorization.
func status(t *testing.T, url, auth string) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
