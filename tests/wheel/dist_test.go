// Package wheel tests what `make wheel` puts in dist/: the platform wheels,
// each with the static sidecar for its platform, and the sdist; and that
// the Linux x86_64 wheel, installed into a fresh environment with a stock
// JupyterLab and no Go, serves MCP at <lab>/mcp (with and without
// jupyter-collaboration) and uninstalls without a trace.
package wheel

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"debug/macho"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/jupyter-mcp-sidecar/jupyter-mcp-sidecar/tests/labtest"
)

const binaryInWheel = "jupyter_mcp_sidecar_proxy/bin/jupyter-mcp-sidecar"

// platform is one wheel `make wheel` builds.
type platform struct {
	goos, goarch string
	tag          string   // the platform part of the file name
	tags         []string // the WHEEL file's Tag lines
}

var platforms = []platform{
	{"linux", "amd64", "manylinux_2_17_x86_64.manylinux2014_x86_64.musllinux_1_1_x86_64",
		[]string{"py3-none-manylinux2014_x86_64", "py3-none-manylinux_2_17_x86_64", "py3-none-musllinux_1_1_x86_64"}},
	{"linux", "arm64", "manylinux_2_17_aarch64.manylinux2014_aarch64.musllinux_1_1_aarch64",
		[]string{"py3-none-manylinux2014_aarch64", "py3-none-manylinux_2_17_aarch64", "py3-none-musllinux_1_1_aarch64"}},
	{"darwin", "amd64", "macosx_12_0_x86_64", []string{"py3-none-macosx_12_0_x86_64"}},
	{"darwin", "arm64", "macosx_12_0_arm64", []string{"py3-none-macosx_12_0_arm64"}},
}

// distFile is the one file in dist/ matching pattern.
func distFile(t testing.TB, pattern string) string {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(labtest.RepoRoot(), "dist", pattern))
	if len(matches) != 1 {
		t.Fatalf("dist/%s: %d files, want 1: run `make wheel` (make test does)", pattern, len(matches))
	}
	return matches[0]
}

func wheelOf(t testing.TB, p platform) string {
	return distFile(t, "jupyter_mcp_sidecar-*-py3-none-"+p.tag+".whl")
}

// zipEntry reads the entry of w whose name ends with suffix.
func zipEntry(t testing.TB, w *zip.ReadCloser, suffix string) ([]byte, *zip.File) {
	t.Helper()
	for _, f := range w.File {
		if strings.HasSuffix(f.Name, suffix) {
			r, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			data, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			return data, f
		}
	}
	t.Fatalf("%s: no entry ending in %s", w.File[0].Name, suffix)
	return nil, nil
}

// header is the value of "name: value" in an email-style metadata file.
func header(meta []byte, name string) []string {
	var vals []string
	for _, line := range strings.Split(string(meta), "\n") {
		if v, ok := strings.CutPrefix(line, name+": "); ok {
			vals = append(vals, strings.TrimSpace(v))
		}
	}
	return vals
}

func TestWheels(t *testing.T) {
	var version string
	for _, p := range platforms {
		t.Run(p.goos+"-"+p.goarch, func(t *testing.T) {
			path := wheelOf(t, p)
			w, err := zip.OpenReader(path)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()

			whl, _ := zipEntry(t, w, ".dist-info/WHEEL")
			if got := header(whl, "Root-Is-Purelib"); !slices.Equal(got, []string{"false"}) {
				t.Errorf("Root-Is-Purelib = %q, want false (a platform wheel)", got)
			}
			if got := header(whl, "Tag"); !slices.Equal(got, p.tags) {
				t.Errorf("Tag lines = %q, want %q", got, p.tags)
			}
			meta, _ := zipEntry(t, w, ".dist-info/METADATA")
			if got := header(meta, "Name"); !slices.Equal(got, []string{"jupyter-mcp-sidecar"}) {
				t.Errorf("Name = %q", got)
			}
			v := header(meta, "Version")
			if len(v) != 1 || !strings.HasPrefix(filepath.Base(path), "jupyter_mcp_sidecar-"+v[0]+"-") {
				t.Errorf("Version %q does not match the file name %s", v, filepath.Base(path))
			} else if version == "" {
				version = v[0]
			} else if v[0] != version {
				t.Errorf("Version %s, another wheel has %s", v[0], version)
			}
			deps := header(meta, "Requires-Dist")
			for _, want := range []string{"jupyter-server-proxy", "jupyter-collaboration>=5; extra == 'live'"} {
				if !slices.ContainsFunc(deps, func(d string) bool { return strings.HasPrefix(d, want) }) {
					t.Errorf("Requires-Dist %q lacks %s", deps, want)
				}
			}
			zipEntry(t, w, ".data/data/etc/jupyter/jupyter_server_config.d/jupyter_mcp_sidecar_proxy.json")
			// The "Agent changes" sidebar, prebuilt: JupyterLab finds it there.
			zipEntry(t, w, ".data/data/share/jupyter/labextensions/jupyter-mcp-sidecar-changes/package.json")

			bin, f := zipEntry(t, w, binaryInWheel)
			if f.Name != binaryInWheel {
				t.Errorf("binary at %s, want %s", f.Name, binaryInWheel)
			}
			if mode := f.Mode(); mode&0o111 != 0o111 {
				t.Errorf("binary mode %v: not executable", mode)
			}
			switch p.goos {
			case "linux":
				checkELF(t, bin, p.goarch)
			case "darwin":
				checkMachO(t, bin, p.goarch)
			}
		})
	}
}

// checkELF: a static executable for goarch, which any Linux runs (no
// interpreter, no shared libraries: what makes the manylinux and musllinux
// tags true).
func checkELF(t *testing.T, bin []byte, goarch string) {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		t.Fatalf("binary is not ELF: %v", err)
	}
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[goarch]
	if f.Machine != want || f.Class != elf.ELFCLASS64 || f.Type != elf.ET_EXEC {
		t.Errorf("ELF %v %v %v, want a 64-bit %v executable", f.Class, f.Type, f.Machine, want)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP || prog.Type == elf.PT_DYNAMIC {
			t.Errorf("ELF has %v: not static", prog.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("ELF needs %v", libs)
	}
}

// checkMachO: an executable for goarch that runs on the macOS the tag
// names (12.0) or newer, linking only what every macOS has (Go's darwin
// port calls the system through libSystem; a Mach-O cannot be static).
func checkMachO(t *testing.T, bin []byte, goarch string) {
	f, err := macho.NewFile(bytes.NewReader(bin))
	if err != nil {
		t.Fatalf("binary is not Mach-O: %v", err)
	}
	want := map[string]macho.Cpu{"amd64": macho.CpuAmd64, "arm64": macho.CpuArm64}[goarch]
	if f.Cpu != want || f.Type != macho.TypeExec {
		t.Errorf("Mach-O %v %v, want a %v executable", f.Cpu, f.Type, want)
	}
	if libs, _ := f.ImportedLibraries(); slices.ContainsFunc(libs, func(l string) bool {
		return !strings.HasPrefix(l, "/usr/lib/") && !strings.HasPrefix(l, "/System/Library/")
	}) {
		t.Errorf("Mach-O needs libraries outside the system: %v", libs)
	}
	const lcBuildVersion = 0x32 // cmd, cmdsize, platform, minos (xxxx.yy.zz)
	found := false
	for _, l := range f.Loads {
		raw := l.Raw()
		if len(raw) >= 16 && f.ByteOrder.Uint32(raw) == lcBuildVersion {
			found = true
			minos := binary.LittleEndian.Uint32(raw[12:])
			t.Logf("needs macOS %d.%d", minos>>16, minos>>8&0xff)
			if minos>>16 > 12 {
				t.Errorf("binary needs macOS %d.%d, the tag says 12.0", minos>>16, minos>>8&0xff)
			}
		}
	}
	if !found {
		t.Error("Mach-O has no LC_BUILD_VERSION")
	}
}

// The sdist carries the Go module, to build the sidecar where Go is present.
func TestSdist(t *testing.T) {
	path := distFile(t, "jupyter_mcp_sidecar-*.tar.gz")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	prefix := strings.TrimSuffix(filepath.Base(path), ".tar.gz") + "/"
	names := map[string]bool{}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names[strings.TrimPrefix(h.Name, prefix)] = true
	}
	for _, want := range []string{"PKG-INFO", "pyproject.toml", "hatch_build.py", "version.py", "go.mod", "go.sum",
		"sidecar/cmd/jupyter-mcp-sidecar/main.go", "jupyter_mcp_sidecar_proxy/__init__.py",
		"jupyter-config/jupyter_server_config.d/jupyter_mcp_sidecar_proxy.json", "labextension/dist/package.json", "labextension/src/index.js"} {
		if !names[want] {
			t.Errorf("sdist lacks %s", want)
		}
	}
}

// The binary reports the wheel's version (both come from the git tag).
func TestBinaryVersion(t *testing.T) {
	w, err := zip.OpenReader(wheelOf(t, platforms[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	meta, _ := zipEntry(t, w, ".dist-info/METADATA")
	bin, _ := zipEntry(t, w, binaryInWheel)
	exe := filepath.Join(t.TempDir(), "jupyter-mcp-sidecar")
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skipf("the linux/amd64 binary does not run on %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	out, err := exec.Command(exe, "--version").Output()
	if err != nil {
		t.Fatalf("the wheel's linux/amd64 binary does not run: %v", err)
	}
	if got, want := strings.TrimSpace(string(out)), header(meta, "Version")[0]; got != want {
		t.Errorf("binary --version = %q, wheel version %q", got, want)
	}
}
