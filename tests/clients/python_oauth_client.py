"""Signs in to <hub>/services/mcp with the official Python MCP SDK's OAuth
client (OAuthClientProvider), as an MCP client given only the URL does, for
the Go test that reads its lines (tests/hub/oauth_test.go), which plays
the person in a browser:

    authorize <url>                 open this in the browser
    scope <granted scopes>
    tools <names, comma-separated>  tools/list
    result <ok|error> <text>        execute_code "print(6*7)" in NOTEBOOK
    error <message>                 anything else that failed

Usage: python_oauth_client.py URL NOTEBOOK
"""

import asyncio
import sys
from urllib.parse import parse_qs, urlsplit

import httpx2
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken


def say(*words):
    print(*words, flush=True)


class Memory(TokenStorage):
    """Everything kept in memory: a real client would keep it on disk."""

    tokens = None
    client = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull):
        self.client = client_info


async def main(url, notebook):
    # The redirect URI: a loopback server that takes the code.
    code = asyncio.get_running_loop().create_future()

    async def answer(reader, writer):
        target = (await reader.readline()).decode().split(" ")[1]
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        parts = urlsplit(target)
        q = {k: v[0] for k, v in parse_qs(parts.query).items()}
        found = parts.path == "/callback" and "code" in q
        body = b"Signed in: you may close this page." if found else b"Not found"
        writer.write(b"HTTP/1.1 %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (b"200 OK" if found else b"404 Not Found", len(body), body))
        await writer.drain()
        writer.close()
        if found and not code.done():
            code.set_result(AuthorizationCodeResult(code=q["code"], state=q.get("state"), iss=q.get("iss")))

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    redirect = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/callback"

    async def show(authorization_url):
        say("authorize", authorization_url)

    async def wait_for_code():
        return await code

    storage = Memory()
    provider = OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(client_name="Python SDK test client", redirect_uris=[redirect],
                                            grant_types=["authorization_code", "refresh_token"], response_types=["code"],
                                            token_endpoint_auth_method="none"),
        storage=storage,
        redirect_handler=show,
        callback_handler=wait_for_code,
    )
    async with httpx2.AsyncClient(auth=provider, timeout=300) as http:
        async with Client(streamable_http_client(url, http_client=http)) as client:
            say("scope", storage.tokens.scope)
            tools = await client.list_tools()
            say("tools", ",".join(t.name for t in tools.tools))
            await client.call_tool("create_notebook", {"path": notebook})
            res = await client.call_tool("execute_code", {"path": notebook, "code": "print(6*7)"})
            text = "\\n".join(c.text for c in res.content if getattr(c, "type", "") == "text")
            say("result", "error" if res.is_error else "ok", text)
    server.close()


if __name__ == "__main__":
    try:
        asyncio.run(main(*sys.argv[1:3]))
    except Exception as e:  # noqa: BLE001 (the test reads what failed)
        say("error", repr(e).replace("\n", "\\n"))
