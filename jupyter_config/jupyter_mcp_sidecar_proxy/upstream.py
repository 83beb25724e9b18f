"""The connections from the Jupyter server to the sidecar's unix socket.

jupyter-server-proxy makes a new HTTP client, and a new connection, for every
request. Here connections are kept between requests (``UpstreamPool``), and a
client with what jupyter-server-proxy's handlers need of Tornado's
(``SidecarClient``) sends each request on one of them (``Exchange``), sending
again a request that a stopping or crashed sidecar took in unread.
"""

import socket
import time
from io import BytesIO
from urllib.parse import urlsplit

import tornado
from tornado.http1connection import HTTP1Connection, HTTP1ConnectionParameters
from tornado.httpclient import HTTPResponse
from tornado.httputil import HTTPMessageDelegate, RequestStartLine
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, StreamClosedError
from tornado.simple_httpclient import HTTPStreamClosedError, HTTPTimeoutError


class UpstreamPool:
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


class SidecarClient:
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
                    exchange = Exchange(request, stream, self.params)
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


class Exchange(HTTPMessageDelegate):
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
