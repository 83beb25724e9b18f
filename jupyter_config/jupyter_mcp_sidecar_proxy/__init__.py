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
client reads as an event stream are streamed, not buffered (``_streaming``),
over connections to the sidecar that are kept open between requests
(``_UpstreamPool``).

Small messages leave the server at once: websockets (the kernel channels the
sidecar executes on, the collaboration rooms it edits through) and streamed
MCP responses are written with TCP_NODELAY (``_nodelay_websockets``,
``_streaming``). Without it each back-to-back kernel round trip stalls about
40 ms: Tornado writes a reply as several small frames, Nagle holds the
second until the first is acknowledged, and the client delays that ACK.

As the server starts, the extension also creates jupyter-collaboration's
update store, which the rooms would otherwise race to create when an agent
opens several notebooks at once (``_create_collaboration_store``).
"""

import asyncio
import os
import signal
import socket
import threading
import time
from io import BytesIO
from importlib.metadata import PackageNotFoundError, version
from urllib.parse import urlsplit

import tornado
from jupyter_server.utils import url_path_join
from jupyter_server_proxy.config import ServerProcess
from tornado.http1connection import HTTP1Connection, HTTP1ConnectionParameters
from tornado.httpclient import HTTPResponse
from tornado.httputil import HTTPMessageDelegate, RequestStartLine
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, StreamClosedError
from tornado.simple_httpclient import HTTPStreamClosedError, HTTPTimeoutError
from traitlets import Float, List, Unicode, default
from traitlets.config import Configurable

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


def _jupyter_server_extension_points():
    return [{"module": "jupyter_mcp_sidecar_proxy"}]


def _load_jupyter_server_extension(serverapp):
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
    handler = _streaming(handler)
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
    _expose_lab_app(serverapp)
    # Other extensions (collaboration rooms) add their handlers after this
    # one loads; the loop runs this before it serves the first request.
    serverapp.io_loop.add_callback(_nodelay_websockets, serverapp)
    serverapp.io_loop.add_callback(_create_collaboration_store, serverapp)
    _end_idle_worker_threads_at_exit(serverapp)
    _stop_through_jupyter_on_signal(serverapp)
    serverapp.log.info("jupyter-mcp-sidecar %s: MCP served at %s by %s", __version__, prefix, cfg.command)


# How long a stop signal waits for the sidecar to exit before the server
# stops anyway (docker stop kills after 10 s).
_CHILD_EXIT_WAIT = 8


def _stop_through_jupyter_on_signal(serverapp):
    """Make SIGTERM and SIGINT stop the server by Jupyter's own shutdown path.

    When jupyter-server-proxy starts the sidecar, its process supervisor
    (simpervisor) takes over both signals: it forwards the signal to its
    children and then raises SystemExit wherever the main thread happens to
    be. When that is inside a Tornado callback that logs and swallows
    exceptions ("Uncaught exception ... SystemExit: 0"), the exit is lost and
    the server runs on until it is killed (seen in CI). Here the children
    still get the signal first, then the server stops as Jupyter's own SIGTERM
    handler does: it stops accepting, shuts kernels down, lets extensions save
    their documents and ends the loop.

    The server stops only once the children it forwarded the signal to have
    exited (at most ``_CHILD_EXIT_WAIT`` seconds): the sidecar writes the
    agent's edits that the collaboration rooms have not saved yet before it
    exits, and the rooms, which the server's stop closes without saving,
    must still run meanwhile."""
    try:
        from simpervisor import atexitasync
    except ImportError:
        return
    if not (hasattr(atexitasync, "_handlers") and hasattr(atexitasync, "_handle_signal")):
        serverapp.log.warning("jupyter-mcp-sidecar: unknown simpervisor; signals keep its handler")
        return

    waiting = []  # set while a stop waits for the children

    def forward_then_stop(signum, frame):
        children = []
        for forward in list(atexitasync._handlers):
            forward(signum)
            child = getattr(forward, "__self__", None)  # a SupervisedProcess
            if getattr(child, "running", False) and getattr(child, "proc", None) is not None:
                children.append(child.proc)
        if waiting:  # a second signal (Jupyter's ^C ^C): the stop is on its way
            return
        if not children:
            serverapp._signal_stop(signum, frame)
            return
        waiting.append(signum)

        async def stop_once_exited():
            try:
                await asyncio.wait_for(asyncio.gather(*(c.wait() for c in children)), _CHILD_EXIT_WAIT)
            except Exception as e:  # a timeout, or a child already reaped
                serverapp.log.warning("jupyter-mcp-sidecar: stopping without waiting for the sidecar: %r", e)
            serverapp._signal_stop(signum, frame)

        loop = serverapp.io_loop.asyncio_loop
        loop.call_soon_threadsafe(lambda: loop.create_task(stop_once_exited()))

    # simpervisor installs the module's _handle_signal when it starts its first
    # child; replace it before that happens (and again if it already did).
    atexitasync._handle_signal = forward_then_stop
    if getattr(atexitasync, "signal_handler_set", False):
        signal.signal(signal.SIGTERM, forward_then_stop)
        signal.signal(signal.SIGINT, forward_then_stop)


def _end_idle_worker_threads_at_exit(serverapp):
    """Let the server process exit once it has stopped.

    jupyter-collaboration's stores run blocking work on AnyIO worker threads.
    Those are non-daemon threads that wait on their queue with no timeout and
    are told to stop only when AnyIO's root task ends, which never happens
    under Tornado; so after a SIGTERM the server shuts down, saves, and then
    hangs in threading._shutdown until it is killed (docker stop: 10 s, then
    SIGKILL). Before Python joins the non-daemon threads, each worker is sent
    AnyIO's own stop message, queued behind any job it still runs, so
    pending writes finish and nothing is lost."""
    try:
        from anyio._backends._asyncio import WorkerThread
    except ImportError:
        return
    register = getattr(threading, "_register_atexit", None)
    if register is None:  # a Python without the hook: the old behaviour
        serverapp.log.warning("jupyter-mcp-sidecar: cannot register the thread-exit hook")
        return

    def stop_workers():
        for thread in threading.enumerate():
            if isinstance(thread, WorkerThread) and thread.is_alive():
                thread.queue.put(None)

    register(stop_workers)


def _streaming(handler):
    """The proxy handler, streaming every response an MCP client may read as
    server-sent events.

    jupyter-server-proxy streams a response only when the request's Accept
    header is exactly ``text/event-stream`` and buffers all others (for at
    most 300 s). MCP clients POST with ``Accept: application/json,
    text/event-stream`` and read progress, and the result, from the
    response's event stream as it comes: buffered, progress arrives only
    with the result, and a long call dies at 300 s. So any request that
    accepts an event stream goes the streaming way. Authentication is
    unchanged: it happens before either way is taken."""

    class StreamingProxyHandler(handler):
        async def prepare(self, *args, **kwargs):
            # Before Jupyter authenticates the request: a token in the URL
            # counts as one in the header. A plain Jupyter Server takes
            # either; JupyterHub's servers ignore URL tokens unless
            # JUPYTERHUB_ALLOW_TOKEN_IN_URL is set for the whole server, and
            # MCP clients that take only a URL need them here alone.
            token = self.request.query_arguments.get("token")
            if token and "Authorization" not in self.request.headers:
                self.request.headers["Authorization"] = "token " + token[-1].decode("utf-8", "replace")
            return await super().prepare(*args, **kwargs)

        def proxy_request_headers(self):
            # Replaces any copy the client sent: only Jupyter's answer counts.
            headers = super().proxy_request_headers()
            headers[AUTH_HEADER] = _how_authenticated(self)
            return headers

        def get_client_uri(self, protocol, host, port, proxied_path):
            return _without_token(super().get_client_uri(protocol, host, port, proxied_path))

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            # jupyter-server-proxy drops the headers Jupyter set before it
            # copies the sidecar's; the lab's own (frame-ancestors above
            # all, for the embed page) go back on where the sidecar set none
            # of its own. Its websocket mixin makes flush an attribute of
            # each handler, so the hook goes there too.
            lab_headers = _lab_security_headers(self)
            flush = self.flush

            def flush_with_lab_headers(*args, **kwargs):
                if not self._headers_written:
                    for name, value in lab_headers:
                        if name not in self._headers:
                            self.set_header(name, value)
                return flush(*args, **kwargs)

            self.flush = flush_with_lab_headers

        async def _proxy_buffered(self, host, port, proxied_path, body, client):
            client = self._sidecar_client(client)
            if "text/event-stream" in self.request.headers.get("Accept", ""):
                return await self._proxy_progressive(host, port, proxied_path, body, client)
            return await super()._proxy_buffered(host, port, proxied_path, body, client)

        async def _proxy_progressive(self, host, port, proxied_path, body, client):
            # Each event (progress, then the result) goes out as it is
            # written, not after the client's delayed ACK of the previous
            # one. Tornado turns Nagle back on when the response ends.
            stream = getattr(self.request.connection, "stream", None)
            if stream is not None:
                stream.set_nodelay(True)
            client = self._sidecar_client(client)
            return await super()._proxy_progressive(host, port, proxied_path, body, client)

        def _sidecar_client(self, client):
            """The client for this request: one that reuses connections to
            the sidecar's socket (`_SidecarClient`) instead of the
            one-connection-per-request client jupyter-server-proxy made."""
            if isinstance(client, _SidecarClient) or not self.unix_socket:
                return client
            pool = self.state.get("upstream")
            if pool is None or pool.path != self.unix_socket:
                pool = self.state["upstream"] = _UpstreamPool(self.unix_socket, self.state)
            self._upstream = []
            return _SidecarClient(pool, self._upstream, client.max_header_size, client.max_body_size)

        def on_connection_close(self):
            # The client hung up. Under MCP 2026-07-28 that is how a call is
            # cancelled; the proxy would otherwise keep reading the sidecar's
            # answer until it ends, so the sidecar would never know. Closing
            # the upstream connection ends the sidecar's request too.
            for upstream in getattr(self, "_upstream", ()):
                upstream.close()
            super().on_connection_close()

    return StreamingProxyHandler


# Tells the sidecar how Jupyter authenticated the request it forwards:
# "token" (a token in the Authorization header or the URL: needs no XSRF
# token, as Jupyter's own handlers rule), "cookie" (the login cookie: the
# sidecar asks for the XSRF token) or "unchecked" (the lab checks no XSRF
# tokens: c.ServerApp.disable_check_xsrf).
AUTH_HEADER = "X-Jupyter-MCP-Auth"


def _how_authenticated(handler):
    if handler.token_authenticated:
        return "token"
    if handler.settings.get("disable_check_xsrf", False):
        return "unchecked"
    return "cookie"


def _without_token(uri):
    """The proxied URL without ``token`` query parameters: Jupyter has used
    the token, and the sidecar (and any log line naming the URL) must not
    see it."""
    base, sep, query = uri.partition("?")
    if not sep:
        return uri
    kept = [p for p in query.split("&") if p.partition("=")[0] != "token"]
    return base + ("?" + "&".join(kept) if kept else "")


def _lab_security_headers(handler):
    """The headers Jupyter Server puts on every page of the lab: its
    Content-Security-Policy, X-Content-Type-Options and those of
    ``c.ServerApp.tornado_settings["headers"]``."""
    names = {"content-security-policy", "x-content-type-options", *map(str.lower, handler.settings.get("headers", {}))}
    return [(k, v) for k, v in handler._headers.get_all() if k.lower() in names]


class _UpstreamPool:
    """Open connections to the sidecar's unix socket, kept between requests.

    jupyter-server-proxy makes a new HTTP client, and a new connection, for
    every request, and closes it after the response ("Connection: close").
    Connecting (socket, connect, a loop turn for writability, the sidecar's
    accept) is a large share of the Jupyter server's CPU time for a proxied
    MCP request. The sidecar keeps idle HTTP/1.1 connections open (it sets
    no idle timeout), so they are reused here. An idle connection the
    sidecar closes (it stopped or crashed) leaves the pool as soon as the
    loop sees the close."""

    max_idle = 16

    def __init__(self, path, state):
        self.path = path
        self.state = state
        self.idle = []

    def take(self):
        while self.idle:
            stream = self.idle.pop()
            stream.set_close_callback(None)
            if not stream.closed():
                return stream
        return None

    def give_back(self, stream):
        if stream.closed() or len(self.idle) >= self.max_idle:
            stream.close()
            return
        self.idle.append(stream)
        stream.set_close_callback(lambda: self.idle.remove(stream) if stream in self.idle else None)

    async def connect(self, after_loss=False):
        """A new connection. When the sidecar refuses it, waits until the
        sidecar listens and connects once more: jupyter-server-proxy waits
        for the sidecar to be ready only when it first starts it; when the
        sidecar dies (a crash, the OOM killer) simpervisor restarts it, and
        until the new process listens requests found the socket dead and got
        500, although the sidecar was back a moment later. A connection reset
        while it was being made is the same: a dying sidecar's listening
        socket took it into its queue, then closed. Neither carried a
        request, so nothing is sent twice. With `after_loss` (a request was
        just lost unread on a connection: the sidecar died) it waits first,
        as the dying one's socket may still take connections in."""
        if after_loss:
            await self._answering()
            return await self._open()
        try:
            return await self._open()
        except (ConnectionRefusedError, ConnectionResetError, FileNotFoundError):
            if not await self._answering():
                raise
        return await self._open()

    async def _answering(self):
        """Whether a sidecar answers HTTP on the socket, waiting up to the
        proxy's ready timeout for one that is starting. Only a live process
        answers: a dying one's socket resets the probe."""
        proc = self.state.get("proc")
        return hasattr(proc, "ready") and await proc.ready()

    async def _open(self):
        stream = IOStream(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
        try:
            await stream.connect(self.path)
        except StreamClosedError as e:
            raise e.real_error or e from None
        return stream


class _SidecarClient:
    """What jupyter-server-proxy's handlers need of Tornado's HTTP client
    (``fetch(request, raise_error=False)`` with its streaming and header
    callbacks, its errors and timeouts), over the pool's connections. The
    connections in use are listed in `in_use`, for closing when the client
    that asked hangs up."""

    def __init__(self, pool, in_use, max_header_size, max_body_size):
        self.pool = pool
        self.in_use = in_use
        self.params = HTTP1ConnectionParameters(
            no_keep_alive=False, max_header_size=max_header_size, max_body_size=max_body_size, decompress=False
        )

    async def fetch(self, request, raise_error=True):
        loop = IOLoop.current()
        start, start_wall = loop.time(), time.time()
        stream = self.pool.take()
        tries = 0
        timed_out = []
        timeout = None
        try:
            while True:
                if stream is None:
                    stream = await self.pool.connect(after_loss=tries > 0)
                self.in_use.append(stream)
                if timeout is None and request.request_timeout:
                    timeout = loop.call_at(start + request.request_timeout, lambda: (timed_out.append(True), self._close()))
                try:
                    exchange = _Exchange(request, stream, self.params)
                    response = await exchange.run()
                    break
                except StreamClosedError as e:
                    # The sidecar closed the connection before it read this
                    # request: the write failed (EPIPE), or the socket was
                    # closed with the request unread (ECONNRESET). Either a
                    # kept connection of a sidecar that stopped, or crashed
                    # and came back; or a new one that a dying sidecar's
                    # listening socket took in as the process exited (killed
                    # with SIGKILL, its socket outlives its /proc/<pid>/exe
                    # for a moment). Nothing was handled, so the request goes
                    # again on a new connection, once a sidecar answers.
                    # Twice at most: a stale kept connection, then a dying
                    # sidecar's.
                    unread = isinstance(e.real_error, (BrokenPipeError, ConnectionResetError))
                    tries += 1
                    if not (unread and exchange.code is None and not timed_out and tries <= 2):
                        raise
                    self.in_use.remove(stream)
                    stream = None
        except StreamClosedError as e:
            if timed_out:
                raise HTTPTimeoutError("Timeout during request") from None
            raise e.real_error or HTTPStreamClosedError("Stream closed") from None
        finally:
            if timeout is not None:
                loop.remove_timeout(timeout)
        self.in_use.remove(stream)
        if exchange.keep_alive:
            self.pool.give_back(stream)
        else:
            stream.close()
        response = HTTPResponse(
            request,
            exchange.code,
            reason=exchange.reason,
            headers=exchange.headers,
            buffer=BytesIO(bytes(exchange.body)),
            effective_url=request.url,
            request_time=loop.time() - start,
            start_time=start_wall,
        )
        if raise_error and response.error:
            raise response.error
        return response

    def _close(self):
        for stream in self.in_use:
            stream.close()


class _Exchange(HTTPMessageDelegate):
    """One request and its response on one connection, as Tornado's simple
    client sends and reads it (the same headers added, the same callbacks),
    except that the connection stays open: no "Connection: close"."""

    def __init__(self, request, stream, params):
        self.request, self.stream, self.params = request, stream, params
        self.code, self.reason, self.headers = None, None, None
        self.body = bytearray()
        self.keep_alive = False

    async def run(self):
        request = self.request
        url = urlsplit(request.url)
        headers = request.headers
        if "Host" not in headers:
            headers["Host"] = url.netloc
        if request.user_agent:
            headers["User-Agent"] = request.user_agent
        elif headers.get("User-Agent") is None:
            headers["User-Agent"] = f"Tornado/{tornado.version}"
        if request.body is not None:
            headers["Content-Length"] = str(len(request.body))
        if request.method == "POST" and "Content-Type" not in headers:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        path = (url.path or "/") + ("?" + url.query if url.query else "")
        conn = HTTP1Connection(self.stream, True, self.params)
        # Head and body in one write: the sidecar reads the request at once.
        written = conn.write_headers(RequestStartLine(request.method, path, ""), headers, request.body or None)
        conn.finish()
        await written
        if not await conn.read_response(self):
            raise StreamClosedError()
        self.keep_alive = self.keep_alive and not self.stream.closed()
        if self.keep_alive:
            conn.detach()
        return self

    def headers_received(self, start_line, headers):
        self.code, self.reason, self.headers = start_line.code, start_line.reason, headers
        self.keep_alive = start_line.version == "HTTP/1.1" and headers.get("Connection", "").lower() != "close"
        callback = self.request.header_callback
        if callback is not None:
            callback("%s %s %s\r\n" % start_line)
            for k, v in headers.get_all():
                callback(f"{k}: {v}\r\n")
            callback("\r\n")

    def data_received(self, chunk):
        if self.request.streaming_callback is not None:
            self.request.streaming_callback(chunk)
        else:
            self.body.extend(chunk)


def _expose_lab_app(serverapp):
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


def _nodelay_websockets(serverapp):
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


async def _create_collaboration_store(serverapp):
    """Create jupyter-collaboration's update store before any room opens.

    Every room opens the store (by default one SQLite file shared by all
    rooms) on its own, and creates it when it is missing, with no lock
    shared between rooms. When several rooms open at once on a new lab, as
    when an agent reads notebooks in parallel, they all create it: all but
    one fail ("table yupdates already exists"), and their writes then fail
    for the life of the room ("no such table", "attempt to write a readonly
    database", "database is locked"). Opened once here, as the server
    starts, the store exists before any room can open it."""
    store_class = serverapp.web_app.settings.get("collaborative_ystore_class")
    if store_class is None or not hasattr(store_class, "db_path"):
        return  # no collaboration, or a store that is not one shared file
    try:
        async with store_class(config=serverapp.config, path="jupyter-mcp-sidecar", log=serverapp.log) as store:
            await store.db_initialized.wait()
    except Exception:
        serverapp.log.warning("jupyter-mcp-sidecar: could not create the collaboration store", exc_info=True)
