"""Drives <lab>/mcp with the official Python MCP SDK, step by step, printing
one line per event as it happens for the Go test that reads them
(tests/integration/clients_test.go):

    protocol <version>
    progress <message>              execute_cell on GATED_CELL, with a progress callback
    result <ok|error> <its text contents, \\n for newlines>
    cancelled <execution id>        execute_cell on LOOP_CELL, the call's task cancelled once it printed
    execution <get_execution's structured result as JSON>
    asked <the elicitation's message>   execute_code waiting on input(); the callback answers "Ada"
    input <ok|error> <its text contents, \\n for newlines>
    read <mime type> <source of the first cell as JSON>   resources/read of notebook:///LIVE_NOTEBOOK
    subscribed                      the subscription holds; the script then reads from stdin
                                    the text the test types in the browser
    updated <uri> <source of the first cell as JSON>      per change notification, a re-read,
                                    until the source holds that text

MODE is the SDK's connect mode: "auto" (its default: server/discover first,
so 2026-07-28 with this server, where every call names its notebook, a
subscription is a subscriptions/listen stream, Client.listen, and
cancelling a call closes its request's stream) or "legacy" (the initialize
handshake, 2025-11-25: resources/subscribe with notifications through the
message handler, and a cancelled call sends notifications/cancelled).

Tasks are not driven: this SDK (2.3.0) has only the 2025-11-25 task types
(mcp_types GetTaskRequest...) and no client methods for any tasks, neither
those nor the 2026-07-28 extension (SEP-2663) the server speaks.

Usage: python_client.py URL TOKEN NOTEBOOK GATED_CELL LOOP_CELL LIVE_NOTEBOOK MODE
"""

import asyncio
import json
import re
import sys
import warnings

import httpx2
from mcp import types
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import ResourceUpdated


def say(*words):
    print(*words, flush=True)


def line(res):
    text = "\n".join(c.text for c in res.content if c.type == "text")
    return ("error" if res.is_error else "ok") + " " + text.replace("\n", "\\n")


async def first_source(client, uri):
    """The live notebook's mime type and the source of its first cell."""
    res = await client.read_resource(uri)
    src = json.loads(res.contents[0].text)["cells"][0]["source"]
    return res.contents[0].mime_type, json.dumps("".join(src) if isinstance(src, list) else src)


async def until_typed(client, uri, updates):
    """Re-reads uri after each updated URI from updates, printing each, until
    the first cell holds the line the test sends on stdin."""
    typed = (await asyncio.to_thread(sys.stdin.readline)).rstrip("\n")
    async for updated in updates:
        mime, src = await first_source(client, uri)
        say("updated", updated, src)
        if updated == uri and typed in json.loads(src):
            return


async def main(url, token, path, gated_cell, loop_cell, live, mode):
    async def progress(_progress, _total, message):
        say("progress", message)

    async def elicitation(_context, params):
        say("asked", params.message.replace("\n", " "))
        return types.ElicitResult(action="accept", content={"input": "Ada"})

    notified = asyncio.Queue()  # URIs of notifications/resources/updated (2025-11-25)

    async def messages(message):
        if isinstance(message, types.ResourceUpdatedNotification):
            await notified.put(message.params.uri)

    headers = {"Authorization": "token " + token}
    async with httpx2.AsyncClient(headers=headers, timeout=300) as http:
        async with Client(
            streamable_http_client(url, http_client=http),
            mode=mode,
            elicitation_callback=elicitation,
            message_handler=messages,
        ) as client:
            say("protocol", client.session.protocol_version)

            # Progress: each output line arrives while the cell runs.
            res = await client.call_tool(
                "execute_cell", {"path": path, "cell_id": gated_cell, "timeout": 120}, progress_callback=progress
            )
            say("result", line(res))

            # Cancel: cancel the call's task once the loop has printed.
            running = asyncio.Event()
            ids = []

            async def spinning(_progress, _total, message):
                m = re.search(r"execution (x[0-9a-f]+)", message or "")
                if m and "spinning" in message and not ids:
                    ids.append(m[1])
                    running.set()

            call = asyncio.create_task(
                client.call_tool(
                    "execute_cell", {"path": path, "cell_id": loop_cell, "timeout": 120}, progress_callback=spinning
                )
            )
            waiting = asyncio.create_task(running.wait())
            await asyncio.wait({call, waiting}, return_when=asyncio.FIRST_COMPLETED)
            if call.done():
                say("result", "unexpected", line(call.result()))
                sys.exit(1)
            call.cancel()
            try:
                await call
            except asyncio.CancelledError:
                pass
            say("cancelled", ids[0])
            got = await client.call_tool("get_execution", {"execution_id": ids[0], "timeout": 60})
            say("execution", json.dumps(got.structured_content))

            # input(): asked of the elicitation callback.
            res = await client.call_tool(
                "execute_code", {"path": path, "code": "name = input('Your name? ')\nprint('hello', name)"}
            )
            say("input", line(res))

            # A resource read, a subscription, and a re-read per change
            # notification until the text the test typed in the browser shows.
            uri = "notebook:///" + live
            say("read", *(await first_source(client, uri)))
            if client.session.protocol_version >= "2026-07-28":
                async with client.listen(resource_subscriptions=[uri]) as sub:
                    say("subscribed")

                    async def events():
                        async for event in sub:
                            if isinstance(event, ResourceUpdated):
                                yield event.uri

                    await until_typed(client, uri, events())
            else:
                with warnings.catch_warnings():  # deprecated as of 2026-07-28, which this is not
                    warnings.simplefilter("ignore")
                    await client.subscribe_resource(uri)
                say("subscribed")

                async def queued():
                    while True:
                        yield await notified.get()

                await until_typed(client, uri, queued())


asyncio.run(main(*sys.argv[1:]))
