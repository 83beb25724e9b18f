// Drives <lab>/mcp with the official TypeScript MCP SDK, once per protocol
// version named (the i-th one on cells c<2i> and c<2i+1> of NOTEBOOK, so
// one kernel serves them all), step by step for the Go test that reads its
// lines (tests/integration/clients_test.go):
//
//   version <asked>
//   protocol <negotiated>
//   tools <count>                          tools/list
//   progress <message>                     execute_cell on c<2i>, with a progress callback
//   result <ok|error> <its text contents, \n for newlines>
//   cancelled <execution id>               execute_cell on c<2i+1> (a loop), aborted once it printed
//   execution <get_execution's structured result as JSON>
//   asked <the elicitation's message>      execute_code waiting on input(); the elicitation handler answers "Ada"
//   input <ok|error> <its text contents, \n for newlines>
//   read <mime type> <source of the first cell as JSON>     resources/read of notebook:///LIVE_NOTEBOOK
//   subscribed                             resources/subscribe returned; the script then reads
//                                          from stdin the text the test types in the browser
//   updated <uri> <source of the first cell as JSON>        per notifications/resources/updated, a re-read,
//                                          until the source holds that text
//
// Tasks are not driven: this SDK (1.32.2) has only the experimental tasks
// of 2025-11-25 (client.experimental.tasks: a tools/call with params.task),
// while the server's tasks are the 2026-07-28 extension (SEP-2663), which
// a server must not enable before 2026-07-28 and this SDK does not speak.
//
// Usage: node ts_client.mjs URL TOKEN NOTEBOOK LIVE_NOTEBOOK VERSION...
import { createInterface } from "node:readline";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ElicitRequestSchema, ResourceUpdatedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";

const [url, token, path, live, ...versions] = process.argv.slice(2);
const say = (...words) => console.log(words.join(" "));
const texts = (res) => (res.content ?? []).filter((c) => c.type === "text").map((c) => c.text).join("\n").replaceAll("\n", "\\n");
const long = { timeout: 300_000, resetTimeoutOnProgress: true };
const stdin = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const liveURI = "notebook:///" + live;

// The SDK always offers its newest version in initialize; an older client
// offers an older one. This fetch offers the version under test instead,
// and the SDK then speaks what the server agreed to, as with an older SDK.
function offering(version) {
  return async (input, init) => {
    if (init?.body && typeof init.body === "string" && init.body.includes('"initialize"')) {
      const msg = JSON.parse(init.body);
      if (msg.method === "initialize") {
        msg.params.protocolVersion = version;
        init = { ...init, body: JSON.stringify(msg) };
      }
    }
    return fetch(input, init);
  };
}

// firstSource reads the live notebook and returns its mime type and the
// source of its first cell.
async function firstSource(client) {
  const { contents } = await client.readResource({ uri: liveURI });
  const src = JSON.parse(contents[0].text).cells[0].source;
  return [contents[0].mimeType, JSON.stringify(Array.isArray(src) ? src.join("") : src)];
}

// updates queues the URIs of notifications/resources/updated for next().
function updates(client) {
  const queue = [];
  let wake = () => {};
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
    queue.push(n.params.uri);
    wake();
  });
  return async () => {
    while (queue.length === 0) await new Promise((resolve) => (wake = resolve));
    return queue.shift();
  };
}

for (const [i, version] of versions.entries()) {
  say("version", version);
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: "token " + token } },
    fetch: offering(version),
  });
  const client = new Client({ name: "ts-sdk-test", version: "1.0.0" }, { capabilities: { elicitation: { form: {} } } });
  client.setRequestHandler(ElicitRequestSchema, (req) => {
    say("asked", req.params.message.replaceAll("\n", " "));
    return { action: "accept", content: { input: "Ada" } };
  });
  const nextUpdate = updates(client);
  await client.connect(transport);
  say("protocol", transport.protocolVersion);
  const { tools } = await client.listTools();
  say("tools", tools.length);

  // Progress: each output line arrives while the cell runs.
  const res = await client.callTool({ name: "execute_cell", arguments: { path, cell_id: `c${2 * i}`, timeout: 120 } }, undefined, {
    ...long,
    onprogress: (p) => say("progress", p.message),
  });
  say("result", res.isError ? "error" : "ok", texts(res));

  // Cancel: abort the call once the loop has printed, which makes the SDK
  // send notifications/cancelled.
  const abort = new AbortController();
  let id;
  const call = client.callTool({ name: "execute_cell", arguments: { path, cell_id: `c${2 * i + 1}`, timeout: 120 } }, undefined, {
    ...long,
    signal: abort.signal,
    onprogress: (p) => {
      const m = /execution (x[0-9a-f]+)/.exec(p.message ?? "");
      if (m && (p.message ?? "").includes("spinning") && !id) {
        id = m[1];
        abort.abort();
      }
    },
  });
  try {
    const r = await call;
    say("result", "unexpected", JSON.stringify(r).slice(0, 300));
    process.exit(1);
  } catch (err) {
    if (!id) throw err;
  }
  say("cancelled", id);
  const got = await client.callTool({ name: "get_execution", arguments: { execution_id: id, timeout: 60 } });
  say("execution", JSON.stringify(got.structuredContent));

  // input(): the server asks the elicitation handler for the line.
  const asked = await client.callTool(
    { name: "execute_code", arguments: { path, code: "name = input('Your name? ')\nprint('hello', name)" } },
    undefined,
    long,
  );
  say("input", asked.isError ? "error" : "ok", texts(asked));

  // A resource read, a subscription, and a re-read per notification until
  // the text the test typed in the browser shows.
  say("read", ...(await firstSource(client)));
  await client.subscribeResource({ uri: liveURI });
  say("subscribed");
  const typed = (await stdin.next()).value;
  for (;;) {
    const uri = await nextUpdate();
    const [, src] = await firstSource(client);
    say("updated", uri, src);
    if (uri === liveURI && JSON.parse(src).includes(typed)) break;
  }
  await client.close();
}
stdin.return();
process.stdin.destroy();
