"""Drives <lab>/mcp with the official Python MCP SDK: initializes (the SDK
picks the protocol version), runs execute_cell on a notebook's cell with a
progress callback, and prints one line per event as it happens, for the Go
test that reads them:

    protocol <version>
    progress <message>
    result <ok|error> <text of the first content>

Usage: python_progress.py URL TOKEN NOTEBOOK CELL_ID
"""

import asyncio
import sys

import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client


async def main(url, token, path, cell_id):
    async def progress(_progress, _total, message):
        print("progress", message, flush=True)

    headers = {"Authorization": "token " + token}
    async with httpx2.AsyncClient(headers=headers, timeout=300) as http:
        async with streamable_http_client(url, http_client=http) as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                init = await session.initialize()
                print("protocol", init.protocol_version, flush=True)
                res = await session.call_tool(
                    "execute_cell",
                    {"path": path, "cell_id": cell_id, "timeout": 120},
                    progress_callback=progress,
                )
                text = res.content[0].text if res.content else ""
                print("result", "error" if res.is_error else "ok", text.replace("\n", "\\n"), flush=True)


asyncio.run(main(*sys.argv[1:]))
