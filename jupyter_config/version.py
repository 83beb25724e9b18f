"""The project's version, from the git tag: one string for the wheel, the
sidecar binary (``--version``) and the image.

``git describe`` output is mapped to PEP 440 so pip accepts it:
``v1.2.0`` -> ``1.2.0``; three commits later -> ``1.2.0.post3+g1a2b3c4``;
uncommitted changes add ``.dirty``; no tag at all -> ``0.0.0+g1a2b3c4``.
``JUPYTER_MCP_SIDECAR_VERSION`` overrides it (the Docker build, which has
no .git, gets it from make). Run as a script it prints the version.
"""

import os
import re
import subprocess
import sys

ENV = "JUPYTER_MCP_SIDECAR_VERSION"
FALLBACK = "0.0.0"


def _git(root, *args):
    try:
        out = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def from_describe(describe):
    """PEP 440 form of `git describe --tags --long --always --dirty`."""
    dirty = describe.endswith("-dirty")
    if dirty:
        describe = describe[: -len("-dirty")]
    m = re.fullmatch(r"v?(\d+(?:\.\d+)*)-(\d+)-g([0-9a-f]+)", describe)
    if m:
        base, distance, sha = m.groups()
        version = base if distance == "0" else "%s.post%s" % (base, distance)
        local = [] if distance == "0" else ["g" + sha]
    elif re.fullmatch(r"[0-9a-f]+", describe):  # no tag: the commit only
        version, local = FALLBACK, ["g" + describe]
    else:
        return None
    if dirty:
        local.append("dirty")
    return version + ("+" + ".".join(local) if local else "")


def version(root=None):
    if os.environ.get(ENV):
        return os.environ[ENV]
    root = root or os.path.dirname(os.path.abspath(__file__))
    describe = _git(root, "describe", "--tags", "--long", "--always", "--dirty", "--match", "v[0-9]*")
    return (describe and from_describe(describe)) or FALLBACK


if __name__ == "__main__":
    print(version(sys.argv[1] if len(sys.argv) > 1 else None))
