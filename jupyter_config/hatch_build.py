"""Hatchling hooks: the version from git, and the sidecar binary in the wheel.

The wheel carries a static (CGO_ENABLED=0) jupyter-mcp-sidecar at
jupyter_mcp_sidecar_proxy/bin/ and is tagged for the platform it runs on.
Environment:

  JUPYTER_MCP_SIDECAR_TARGET  GOOS/GOARCH to build for (linux/amd64,
                              linux/arm64, darwin/amd64, darwin/arm64);
                              default: this machine.
  JUPYTER_MCP_SIDECAR_BINARY  a prebuilt binary for that target instead of
                              `go build`; "none" makes a pure wheel without
                              one (development: the sidecar comes from PATH).
  JUPYTER_MCP_SIDECAR_VERSION the version (see version.py).
"""

import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile

from hatchling.builders.hooks.plugin.interface import BuildHookInterface
from hatchling.metadata.plugin.interface import MetadataHookInterface

BINARY_IN_WHEEL = "jupyter_mcp_sidecar_proxy/bin/jupyter-mcp-sidecar"

# A static Go binary links no libc, so any glibc (and musl) Linux runs it:
# manylinux2014 (glibc 2.17) is the oldest tag pip knows for both
# architectures, so every pip since 19.3 on every current distribution
# picks the wheel; the PEP 600 spelling comes first for newer tools.
# musllinux covers Alpine. macOS 12 is the oldest the Go toolchain in
# go.mod (>= 1.25) targets, so the tag promises no older macOS.
TAGS = {
    ("linux", "amd64"): "manylinux_2_17_x86_64.manylinux2014_x86_64.musllinux_1_1_x86_64",
    ("linux", "arm64"): "manylinux_2_17_aarch64.manylinux2014_aarch64.musllinux_1_1_aarch64",
    ("darwin", "amd64"): "macosx_12_0_x86_64",
    ("darwin", "arm64"): "macosx_12_0_arm64",
}

# First bytes of the executable each target must have: ELF with e_machine,
# or 64-bit Mach-O with its CPU type (both little-endian).
_ELF_MACHINE = {"amd64": 62, "arm64": 183}
_MACHO_CPU = {"amd64": 0x01000007, "arm64": 0x0100000C}


def _version_module(root):
    spec = importlib.util.spec_from_file_location("_sidecar_version", os.path.join(root, "version.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class SidecarMetadataHook(MetadataHookInterface):
    def update(self, metadata):
        # From an sdist, hatchling has already taken the version from PKG-INFO.
        if "version" not in metadata:
            metadata["version"] = _version_module(self.root).version(self.root)


def _host_target():
    machine = platform.machine().lower()
    goarch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    return sys.platform, goarch


def check_executable(path, goos, goarch):
    """Refuse a binary that would not run on the wheel's platform."""
    with open(path, "rb") as f:
        head = f.read(20)
    if goos == "linux":
        ok = head[:4] == b"\x7fELF" and int.from_bytes(head[18:20], "little") == _ELF_MACHINE.get(goarch)
    elif goos == "darwin":
        ok = head[:4] == b"\xcf\xfa\xed\xfe" and int.from_bytes(head[4:8], "little") == _MACHO_CPU.get(goarch)
    else:
        ok = False
    if not ok:
        raise RuntimeError("%s is not a %s/%s executable" % (path, goos, goarch))


class SidecarBuildHook(BuildHookInterface):
    def initialize(self, version, build_data):
        if self.target_name != "wheel" or version == "editable":
            return
        # shared-data would silently leave a missing directory out.
        if not os.path.isfile(os.path.join(self.root, "labextension", "dist", "package.json")):
            raise RuntimeError(
                "the JupyterLab extension is not built (labextension/dist): run `make labextension` first"
            )
        binary = os.environ.get("JUPYTER_MCP_SIDECAR_BINARY", "")
        if binary == "none":
            return
        target = os.environ.get("JUPYTER_MCP_SIDECAR_TARGET")
        if target:
            goos, _, goarch = target.partition("/")
            if (goos, goarch) not in TAGS:
                raise RuntimeError(
                    "JUPYTER_MCP_SIDECAR_TARGET=%s: wheels are made for %s"
                    % (target, ", ".join("/".join(t) for t in TAGS))
                )
            plat = TAGS[goos, goarch]
        else:
            goos, goarch = _host_target()
            if goos not in ("linux", "darwin"):
                raise RuntimeError("jupyter-mcp-sidecar runs on Linux and macOS only, not on %s" % goos)
            # Built here for here: the interpreter's own platform tag.
            plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
        if binary:
            binary = os.path.abspath(binary)
        else:
            binary = self._go_build(goos, goarch, self.metadata.version)
        if goarch in _ELF_MACHINE:
            check_executable(binary, goos, goarch)
        build_data["pure_python"] = False
        build_data["tag"] = "py3-none-" + plat
        build_data["force_include"][binary] = BINARY_IN_WHEEL

    def _go_build(self, goos, goarch, version):
        # The Go module is the repository (jupyter_config/..) or, in an
        # sdist, this directory, where the sdist put go.mod and sidecar/.
        module = next(
            (d for d in (self.root, os.path.dirname(self.root)) if os.path.isfile(os.path.join(d, "go.mod"))),
            None,
        )
        go = shutil.which("go")
        if go is None or module is None:
            raise RuntimeError(
                "jupyter-mcp-sidecar: no wheel matches this platform, and building the sidecar "
                "from source needs Go >= 1.25 on PATH (https://go.dev/dl/)"
                + ("" if module else " and the Go sources, which this source tree lacks")
                + ". Wheels exist for Linux x86_64/aarch64 and macOS x86_64/arm64."
            )
        self._tmp = tempfile.mkdtemp(prefix="sidecar-wheel-")
        out = os.path.join(self._tmp, "jupyter-mcp-sidecar")
        env = dict(os.environ, CGO_ENABLED="0", GOOS=goos, GOARCH=goarch)
        cmd = [go, "build", "-trimpath", "-ldflags", "-s -w -X main.version=" + version,
               "-o", out, "./sidecar/cmd/jupyter-mcp-sidecar"]
        self.app.display_info("go build for %s/%s (version %s)" % (goos, goarch, version))
        subprocess.run(cmd, cwd=module, env=env, check=True)
        return out

    def finalize(self, version, build_data, artifact_path):
        tmp = getattr(self, "_tmp", None)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
