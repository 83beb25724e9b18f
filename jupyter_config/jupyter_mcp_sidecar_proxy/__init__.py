"""Serve jupyter-mcp-sidecar at <base_url>mcp through jupyter-server-proxy.

jupyter-server-proxy registers two routes per server: ``<base>/<name>/(.*)``,
which proxies, and ``<base>/<name>``, which only answers GET with a redirect.
An MCP client POSTing to ``<base>/mcp`` would get 405. So instead of listing
the sidecar in ``c.ServerProxy.servers`` this extension builds the same
``ServerProcess`` and registers its proxy handler on both paths, sharing one
process state: ``<base>/mcp`` and ``<base>/mcp/`` both reach the sidecar's
``/``. Authentication stays jupyter-server-proxy's (the Jupyter token or login
cookie); the sidecar listens on a unix socket in a 0700 directory, so nothing
but this proxy (and the lab's own user) can call it. The proxy tells the
sidecar how Jupyter authenticated each request (``AUTH_HEADER``), forwards no
``?token=`` to it, and puts the lab's own security headers (its
frame-ancestors) back on the sidecar's responses. Responses that an MCP
client reads as an event stream are streamed, not buffered (``handler``),
over connections to the sidecar that are kept open between requests
(``upstream``).

Small messages leave the server at once: websockets (the kernel channels the
sidecar executes on, the collaboration rooms it edits through) and streamed
MCP responses are written with TCP_NODELAY (``app``,
``handler``). Without it each back-to-back kernel round trip stalls about
40 ms: Tornado writes a reply as several small frames, Nagle holds the
second until the first is acknowledged, and the client delays that ACK.

As the server starts, the extension also creates jupyter-collaboration's
update store, which the rooms would otherwise race to create when an agent
opens several notebooks at once (``store``).

The modules, one job each: ``app`` (settings, the process and its routes, the
lab server's changes), ``handler`` (the proxy handler), ``upstream`` (the
connections to the sidecar), ``signals`` (stopping with the sidecar) and
``store`` (the collaboration store).
"""

from .app import BUNDLED_SIDECAR, MCPSidecar, __version__
from .app import load as _load_jupyter_server_extension
from .handler import AUTH_HEADER

__all__ = ["AUTH_HEADER", "BUNDLED_SIDECAR", "MCPSidecar", "__version__"]


def _jupyter_server_extension_points():
    return [{"module": "jupyter_mcp_sidecar_proxy"}]
