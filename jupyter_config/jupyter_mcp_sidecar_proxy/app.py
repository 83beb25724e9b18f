"""The extension's setup: the sidecar's settings (``c.MCPSidecar``), its
process and proxy routes, and what the lab server needs changed for it
(JupyterLab's app object for the embed page, TCP_NODELAY on websockets).
"""

import os
from importlib.metadata import PackageNotFoundError, version

from jupyter_server.utils import url_path_join
from jupyter_server_proxy.config import ServerProcess
from traitlets import Float, List, Unicode, default
from traitlets.config import Configurable

from .handler import streaming
from .signals import end_idle_worker_threads_at_exit, stop_through_jupyter_on_signal
from .store import create_collaboration_store

try:
    __version__ = version("jupyter-mcp-sidecar")
except PackageNotFoundError:  # run from a source tree
    __version__ = "0.0.0"

# The platform wheels carry the static sidecar here.
BUNDLED_SIDECAR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin", "jupyter-mcp-sidecar")


class MCPSidecar(Configurable):
    """Settings of the sidecar process (``c.MCPSidecar.<name>``)."""

    command = Unicode(
        config=True,
        help="The sidecar executable: a name on PATH or an absolute path. "
        "Default: the one in this package's wheel, else jupyter-mcp-sidecar on PATH.",
    )

    @default("command")
    def _default_command(self):
        if os.access(BUNDLED_SIDECAR, os.X_OK):
            return BUNDLED_SIDECAR
        return "jupyter-mcp-sidecar"
    args = List(
        Unicode(),
        default_value=[],
        config=True,
        help="Extra command-line arguments for the sidecar.",
    )
    path = Unicode(
        "mcp",
        config=True,
        help="URL path under the server's base_url where MCP is served.",
    )
    timeout = Float(
        20.0,
        config=True,
        help="Seconds to wait for the sidecar to answer its readiness probe.",
    )


def load(serverapp):
    """Serve the sidecar at <base>/mcp and <base>/mcp/ and make the server
    ready for it (see the package's docstring)."""
    cfg = MCPSidecar(parent=serverapp)
    base_url = serverapp.web_app.settings["base_url"]
    process = ServerProcess(
        name=cfg.path,
        command=[
            cfg.command,
            "--listen",
            "unix:{unix_socket}",
            "--base-url",
            "{base_url}",
            *cfg.args,
        ],
        unix_socket=True,
        timeout=cfg.timeout,
        launcher_entry={"enabled": False},
    )
    handler, kwargs = process.make_proxy_handler()
    handler = streaming(handler)
    prefix = url_path_join(base_url, cfg.path)
    # Both routes share `kwargs` (it holds the process state), so they reach
    # one process. "()" captures the empty proxied path for the bare URL.
    serverapp.web_app.add_handlers(
        ".*",
        [
            (prefix + "()", handler, kwargs),
            (url_path_join(prefix, "(.*)"), handler, kwargs),
        ],
    )
    expose_lab_app(serverapp)
    # Other extensions (collaboration rooms) add their handlers after this
    # one loads; the loop runs this before it serves the first request.
    serverapp.io_loop.add_callback(nodelay_websockets, serverapp)
    serverapp.io_loop.add_callback(create_collaboration_store, serverapp)
    end_idle_worker_threads_at_exit(serverapp)
    stop_through_jupyter_on_signal(serverapp)
    serverapp.log.info("jupyter-mcp-sidecar %s: MCP served at %s by %s", __version__, prefix, cfg.command)



def expose_lab_app(serverapp):
    """Let same-origin pages reach JupyterLab's application object
    (window.jupyterapp), as the embed page at <base>/mcp/embed needs to open
    notebooks and follow the one shown. Same-origin scripts can already use
    every API with the user's cookie, so this opens nothing new.

    LabApp reads expose_app_in_browser from its own config files only, so
    the setting is made on the LabApp instance (before it renders its page
    config) and on the page config (if it already did)."""
    for app in serverapp.extension_manager.extension_apps.get("jupyterlab", ()):
        if hasattr(app, "expose_app_in_browser"):
            app.expose_app_in_browser = True
    page_config = serverapp.web_app.settings.get("page_config_data")
    if page_config is not None and "exposeAppInBrowser" in page_config:
        page_config["exposeAppInBrowser"] = True


def nodelay_websockets(serverapp):
    """Make every websocket handler of the server set TCP_NODELAY when it
    opens, as Tornado advises for latency-sensitive websockets
    (``WebSocketHandler.set_nodelay``); Jupyter Server does not.

    The kernel websocket sends one execution's reply as several small frames
    (status busy, execute_input, execute_result, execute_reply, status
    idle). With Nagle on, the first frame leaves and the rest wait for its
    ACK, which the client delays by ~40 ms, so every ``1+1`` round trip
    would wait that long. Each routed websocket
    handler class is replaced by a subclass whose ``open`` first sets
    nodelay; routes, arguments and behaviour are otherwise unchanged."""
    from tornado.routing import RuleRouter
    from tornado.websocket import WebSocketHandler

    wrapped = {}

    def nodelay(cls):
        if cls not in wrapped:

            def open(self, *args, **kwargs):
                self.set_nodelay(True)
                return cls.open(self, *args, **kwargs)

            wrapped[cls] = type(cls.__name__, (cls,), {"open": open, "__module__": cls.__module__})
        return wrapped[cls]

    def walk(router):
        for rule in getattr(router, "rules", ()):
            target = rule.target
            if isinstance(target, RuleRouter):
                walk(target)
            elif isinstance(target, type) and issubclass(target, WebSocketHandler):
                if not getattr(target, "_mcp_sidecar_nodelay", False):
                    rule.target = nodelay(target)
                    rule.target._mcp_sidecar_nodelay = True

    walk(serverapp.web_app.default_router)
    walk(serverapp.web_app.wildcard_router)
    serverapp.log.info(
        "jupyter-mcp-sidecar: TCP_NODELAY on websocket handlers: %s",
        ", ".join(sorted(c.__name__ for c in wrapped)) or "none found",
    )
