package wheel

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

// version.py turns the git tag into the PEP 440 version that the wheel, the
// binary and the image share.
func TestVersionFromGitTag(t *testing.T) {
	repo := t.TempDir()
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_GLOBAL=/dev/null")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	version := func() string {
		t.Helper()
		cmd := exec.Command("python3", filepath.Join(labtest.RepoRoot(), "jupyter_config", "version.py"), repo)
		cmd.Env = append(os.Environ(), "JUPYTER_MCP_SIDECAR_VERSION=")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("version.py: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	file := filepath.Join(repo, "f")
	git("init", "-q")
	os.WriteFile(file, []byte("1"), 0o644)
	git("add", "f")
	git("commit", "-qm", "one")
	if got, want := version(), "0.0.0+g"+git("rev-parse", "--short", "HEAD"); got != want {
		t.Errorf("untagged: %q, want %q", got, want)
	}
	git("tag", "v1.2.0")
	if got := version(); got != "1.2.0" {
		t.Errorf("on v1.2.0: %q", got)
	}
	os.WriteFile(file, []byte("2"), 0o644)
	if got := version(); got != "1.2.0+dirty" {
		t.Errorf("on v1.2.0, changed: %q", got)
	}
	git("commit", "-qam", "two")
	sha := git("rev-parse", "--short", "HEAD")
	if got, want := version(), "1.2.0.post1+g"+sha; got != want {
		t.Errorf("one commit after v1.2.0: %q, want %q", got, want)
	}
	os.WriteFile(file, []byte("3"), 0o644)
	if got, want := version(), "1.2.0.post1+g"+sha+".dirty"; got != want {
		t.Errorf("one commit after v1.2.0, changed: %q, want %q", got, want)
	}
}
