package wheel

import (
	"archive/zip"
	"bufio"
	"encoding/csv"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

// Packages that only jupyter-collaboration brings: left out of the first
// install, so the lab starts without it (the files backend).
var collaborationOnly = []string{"jupyter-collaboration", "jupyter-collaboration-ui", "jupyter-docprovider", "jupyter-server-ydoc"}

// TestInstall installs the Linux x86_64 wheel into one fresh virtual
// environment with the pinned JupyterLab, with Go off PATH: first without
// jupyter-collaboration (the files backend), then with the [live] extra (the
// collaboration rooms), then uninstalls it. The steps share the environment,
// as building one costs most of the test's time; pip's cache is reused.
func TestInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a virtual environment")
	}
	wheel := wheelOf(t, platforms[0])
	tmp := t.TempDir()
	venv := filepath.Join(tmp, "venv")
	path := pathWithoutGo(t, filepath.Join(venv, "bin"))

	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is not on PATH")
	}
	run(t, tmp, os.Getenv("PATH"), python, "-m", "venv", venv)
	pinned := filepath.Join(labtest.RepoRoot(), "jupyter_config", "requirements.txt")
	base := filepath.Join(tmp, "requirements-without-collaboration.txt")
	writeFiltered(t, pinned, base, collaborationOnly)
	pip := filepath.Join(venv, "bin", "pip")
	// Everything from here on runs without Go: the wheel needs none.
	run(t, tmp, path, pip, "install", "--quiet", "-r", base, wheel)

	t.Run("extension enabled", func(t *testing.T) {
		// Only the environment's own config: the user's ~/.jupyter stays out.
		t.Setenv("JUPYTER_CONFIG_DIR", t.TempDir())
		out := run(t, tmp, path, filepath.Join(venv, "bin", "jupyter"), "server", "extension", "list")
		out = regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAllString(out, "") // colours
		if !strings.Contains(out, "jupyter_mcp_sidecar_proxy enabled") ||
			!regexp.MustCompile(`jupyter_mcp_sidecar_proxy \S+ OK`).MatchString(out) {
			t.Fatalf("jupyter server extension list does not show the extension enabled and valid:\n%s", out)
		}
		// The "Agent changes" sidebar, from the wheel's shared data.
		out = run(t, tmp, path, filepath.Join(venv, "bin", "jupyter"), "labextension", "list")
		out = regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAllString(out, "")
		if !regexp.MustCompile(`(?m)^\s*jupyter-mcp-sidecar-changes v\S+ enabled OK`).MatchString(out) {
			t.Fatalf("jupyter labextension list does not show the sidebar enabled and OK:\n%s", out)
		}
	})
	bundled, _ := filepath.Glob(filepath.Join(venv, "lib", "python3*", "site-packages", binaryInWheel))
	if len(bundled) != 1 {
		t.Fatalf("the installed sidecar: found %v", bundled)
	}
	t.Run("files backend", func(t *testing.T) {
		useLab(t, venv, path, filepath.Join(tmp, "files-lab"), "files", bundled[0])
	})
	t.Run("command setting", func(t *testing.T) {
		// c.MCPSidecar.command still picks another sidecar than the bundled one.
		other := filepath.Join(tmp, "other", "jupyter-mcp-sidecar")
		data, err := os.ReadFile(bundled[0])
		if err == nil {
			err = os.MkdirAll(filepath.Dir(other), 0o755)
		}
		if err == nil {
			err = os.WriteFile(other, data, 0o755)
		}
		lab := filepath.Join(tmp, "command-lab")
		if err == nil {
			err = os.MkdirAll(filepath.Join(lab, "config"), 0o700)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(lab, "config", "jupyter_server_config.json"),
				[]byte(`{"MCPSidecar": {"command": "`+other+`"}}`), 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
		useLab(t, venv, path, lab, "files", other)
	})
	t.Run("live extra", func(t *testing.T) {
		run(t, tmp, path, pip, "install", "--quiet", "-c", pinned, wheel+"[live]")
		useLab(t, venv, path, filepath.Join(tmp, "rooms-lab"), "jupyter-collaboration", bundled[0])
	})
	t.Run("no wheel for the platform", func(t *testing.T) {
		// pip's own answer, never a wheel whose binary cannot run there.
		cmd := exec.Command(pip, "download", "--no-deps", "--no-index", "--find-links", filepath.Dir(wheel),
			"--only-binary=:all:", "--platform", "manylinux2014_ppc64le", "-d", t.TempDir(), "jupyter-mcp-sidecar")
		cmd.Env = append(os.Environ(), "PATH="+path)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "No matching distribution found") {
			t.Fatalf("pip download for ppc64le: %v\n%s", err, out)
		}
	})
	t.Run("sdist with Go", func(t *testing.T) {
		out := t.TempDir()
		run(t, tmp, os.Getenv("PATH"), pip, "wheel", "--quiet", "--no-deps", "-w", out, distFile(t, "jupyter_mcp_sidecar-*.tar.gz"))
		built, _ := filepath.Glob(filepath.Join(out, "jupyter_mcp_sidecar-*-py3-none-linux_x86_64.whl"))
		if len(built) != 1 {
			t.Fatalf("the sdist built %v, want one linux_x86_64 wheel", built)
		}
		w, err := zip.OpenReader(built[0])
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		bin, _ := zipEntry(t, w, binaryInWheel)
		checkELF(t, bin, "amd64")
	})
	t.Run("wrong prebuilt binary", func(t *testing.T) {
		// The hook refuses a binary for another platform than the wheel's tag.
		w, err := zip.OpenReader(wheelOf(t, platforms[1]))
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		bin, _ := zipEntry(t, w, binaryInWheel)
		arm := filepath.Join(t.TempDir(), "jupyter-mcp-sidecar")
		if err := os.WriteFile(arm, bin, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(pip, "wheel", "--no-deps", "-w", t.TempDir(), filepath.Join(labtest.RepoRoot(), "jupyter_config"))
		cmd.Env = append(os.Environ(), "PATH="+path, "JUPYTER_MCP_SIDECAR_BINARY="+arm, "JUPYTER_MCP_SIDECAR_TARGET=linux/amd64")
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "is not a linux/amd64 executable") {
			t.Fatalf("a linux/arm64 binary in a linux/amd64 wheel: %v\n%s", err, labtest.Tail(out, 4<<10))
		}
	})
	t.Run("sdist without Go", func(t *testing.T) {
		cmd := exec.Command(pip, "wheel", "--no-deps", "-w", t.TempDir(), distFile(t, "jupyter_mcp_sidecar-*.tar.gz"))
		cmd.Env = append(os.Environ(), "PATH="+path)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "needs Go >= 1.25 on PATH") {
			t.Fatalf("building the sdist without Go: %v, want the message that Go is needed\n%s", err, labtest.Tail(out, 4<<10))
		}
	})
	t.Run("uninstall", func(t *testing.T) {
		ours := recordedFiles(t, venv)
		run(t, tmp, path, pip, "uninstall", "--yes", "jupyter-mcp-sidecar")
		for _, f := range ours {
			if _, err := os.Lstat(f); err == nil {
				t.Errorf("left behind: %s", f)
			}
		}
		// Nothing of ours anywhere, recorded or not (caches, empty folders).
		filepath.WalkDir(venv, func(p string, d fs.DirEntry, err error) error {
			if err == nil && (strings.Contains(d.Name(), "jupyter_mcp_sidecar") || strings.Contains(d.Name(), "jupyter-mcp-sidecar")) {
				t.Errorf("left behind: %s", p)
			}
			return nil
		})
	})
}

// useLab starts a lab from venv with PATH path, and through <lab>/mcp
// creates a notebook, inserts a cell and runs it; the lab's log shows that
// the binary at sidecar served it with the documents backend want ("files",
// or "jupyter-collaboration" for its rooms).
func useLab(t *testing.T, venv, path, dir, want, sidecar string) {
	lab, err := labtest.StartFrom(labtest.Setup{Venv: venv, Path: path}, dir, "wheel-token")
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Stop()
	cs, err := lab.Connect(t.Context(), "mcp", "token "+lab.Token)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	labtest.Call[map[string]any](t, cs, "create_notebook", map[string]any{"path": "wheel.ipynb"})
	ins := labtest.Call[struct {
		CellID string `json:"cell_id"`
	}](t, cs, "insert_cell", map[string]any{"path": "wheel.ipynb", "source": "print(6 * 7)", "execute": true})
	cell := labtest.Call[struct {
		Outputs []string `json:"outputs"`
	}](t, cs, "read_cell", map[string]any{"path": "wheel.ipynb", "cell_id": ins.CellID})
	if len(cell.Outputs) != 1 || cell.Outputs[0] != "42\n" {
		t.Errorf("outputs = %q, want [42]", cell.Outputs)
	}
	logData, _ := os.ReadFile(lab.LogPath)
	log := string(logData)
	if !strings.Contains(log, "by "+sidecar) {
		t.Errorf("the lab did not run the sidecar %s; log:\n%s", sidecar, labtest.Tail(logData, 4<<10))
	}
	if !strings.Contains(log, `"documents":"`+want+`"`) {
		t.Errorf("the sidecar did not serve the %s backend; log:\n%s", want, labtest.Tail(logData, 4<<10))
	}
}

// pathWithoutGo is the test's PATH with first in front and without every
// folder holding a go command.
func pathWithoutGo(t *testing.T, first string) string {
	dirs := []string{first}
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		if _, err := os.Stat(filepath.Join(d, "go")); err != nil {
			dirs = append(dirs, d)
		}
	}
	path := strings.Join(dirs, string(os.PathListSeparator))
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "go")); err == nil {
			t.Fatalf("go is still on PATH in %s", d)
		}
	}
	return path
}

// run runs a command with PATH path and returns its combined output.
func run(t *testing.T, dir, path, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+path, "PIP_DISABLE_PIP_VERSION_CHECK=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, labtest.Tail(out, 8<<10))
	}
	return string(out)
}

// writeFiltered copies a requirements file without the named packages.
func writeFiltered(t *testing.T, from, to string, drop []string) {
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		name, _, _ := strings.Cut(sc.Text(), "==")
		norm := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(name), "_", "-"))
		dropped := false
		for _, d := range drop {
			dropped = dropped || norm == d
		}
		if !dropped {
			fmt.Fprintln(&b, sc.Text())
		}
	}
	if err := os.WriteFile(to, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// recordedFiles are the files pip installed for jupyter-mcp-sidecar, from
// its RECORD.
func recordedFiles(t *testing.T, venv string) []string {
	records, _ := filepath.Glob(filepath.Join(venv, "lib", "python3*", "site-packages", "jupyter_mcp_sidecar-*.dist-info", "RECORD"))
	if len(records) != 1 {
		t.Fatalf("RECORD of jupyter-mcp-sidecar: found %v", records)
	}
	f, err := os.Open(records[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	sitePackages := filepath.Dir(filepath.Dir(records[0]))
	var files []string
	for _, row := range rows {
		files = append(files, filepath.Clean(filepath.Join(sitePackages, row[0])))
	}
	if len(files) < 4 {
		t.Fatalf("RECORD lists only %v", files)
	}
	return files
}
