"""Drives <lab>/mcp with the official Python MCP SDK: connects in the given
mode, runs execute_cell on a notebook's cell with a progress callback, then
execute_code with code that waits on input(), which the SDK's elicitation
callback answers "Ada"; prints one line per event as it happens, for the Go
test that reads them:

    protocol <version>
    progress <message>
    result <ok|error> <the text contents>
    asked <the elicitation's message>
    input <ok|error> <the text contents>

MODE is the SDK's connect mode: "auto" (its default: server/discover first,
so 2026-07-28 with this server, where every call names its notebook) or
"legacy" (the initialize handshake, 2025-11-25).

Usage: python_progress.py URL TOKEN NOTEBOOK CELL_ID [MODE]
"""

import asyncio
import sys

import httpx2
from mcp import types
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client


def line(res):
    text = " | ".join(c.text for c in res.content if getattr(c, "text", None))
    return ("error" if res.is_error else "ok") + " " + text.replace("\n", "\\n")


async def main(url, token, path, cell_id, mode="auto"):
    async def progress(_progress, _total, message):
        print("progress", message, flush=True)

    async def elicitation(_context, params):
        print("asked", params.message.replace("\n", " "), flush=True)
        return types.ElicitResult(action="accept", content={"input": "Ada"})

    headers = {"Authorization": "token " + token}
    async with httpx2.AsyncClient(headers=headers, timeout=300) as http:
        async with Client(
            streamable_http_client(url, http_client=http), mode=mode, elicitation_callback=elicitation
        ) as client:
            print("protocol", client.session.protocol_version, flush=True)
            res = await client.call_tool(
                "execute_cell",
                {"path": path, "cell_id": cell_id, "timeout": 120},
                progress_callback=progress,
            )
            print("result", line(res), flush=True)
            res = await client.call_tool(
                "execute_code", {"path": path, "code": "name = input('Your name? ')\nprint('hello', name)"}
            )
            print("input", line(res), flush=True)


asyncio.run(main(*sys.argv[1:]))
