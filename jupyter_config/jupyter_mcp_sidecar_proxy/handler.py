"""The proxy handler that serves <base>/mcp: jupyter-server-proxy's, made to
stream event streams, to take a token in the URL, to tell the sidecar how
Jupyter authenticated the request, and to keep the lab's security headers.
"""

from .upstream import SidecarClient, UpstreamPool


def streaming(handler):
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
            headers[AUTH_HEADER] = how_authenticated(self)
            return headers

        def get_client_uri(self, protocol, host, port, proxied_path):
            return without_token(super().get_client_uri(protocol, host, port, proxied_path))

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            # jupyter-server-proxy drops the headers Jupyter set before it
            # copies the sidecar's; the lab's own (frame-ancestors above
            # all, for the embed page) go back on where the sidecar set none
            # of its own. Its websocket mixin makes flush an attribute of
            # each handler, so the hook goes there too.
            lab_headers = lab_security_headers(self)
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
            the sidecar's socket (`SidecarClient`) instead of the
            one-connection-per-request client jupyter-server-proxy made."""
            if isinstance(client, SidecarClient) or not self.unix_socket:
                return client
            pool = self.state.get("upstream")
            if pool is None or pool.path != self.unix_socket:
                pool = self.state["upstream"] = UpstreamPool(self.unix_socket, self.state)
            self._upstream = []
            return SidecarClient(pool, self._upstream, client.max_header_size, client.max_body_size)

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


def how_authenticated(handler):
    if handler.token_authenticated:
        return "token"
    if handler.settings.get("disable_check_xsrf", False):
        return "unchecked"
    return "cookie"


def without_token(uri):
    """The proxied URL without ``token`` query parameters: Jupyter has used
    the token, and the sidecar (and any log line naming the URL) must not
    see it."""
    base, sep, query = uri.partition("?")
    if not sep:
        return uri
    kept = [p for p in query.split("&") if p.partition("=")[0] != "token"]
    return base + ("?" + "&".join(kept) if kept else "")


def lab_security_headers(handler):
    """The headers Jupyter Server puts on every page of the lab: its
    Content-Security-Policy, X-Content-Type-Options and those of
    ``c.ServerApp.tornado_settings["headers"]``."""
    names = {"content-security-policy", "x-content-type-options", *map(str.lower, handler.settings.get("headers", {}))}
    return [(k, v) for k, v in handler._headers.get_all() if k.lower() in names]
