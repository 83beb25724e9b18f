// Drives <lab>/mcp with the official TypeScript MCP SDK, once per protocol
// version named (the i-th one on cells c<2i> and c<2i+1> of one notebook,
// so one kernel serves them all): connects, lists the tools, runs
// execute_cell on c<2i> with a progress callback, then runs c<2i+1> (a loop),
// aborts that call once its first output arrived, and reads the execution
// back with get_execution. Prints one line per event as it
// happens, for the Go test that reads them (tests/integration/clients_test.go):
//
//   version <asked>
//   protocol <negotiated>
//   tools <count>
//   progress <message>
//   result <ok|error> <text of the first content>
//   cancelled <execution id>
//   execution <get_execution's structured result as JSON>
//
// Usage: node ts_client.mjs URL TOKEN NOTEBOOK VERSION...
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, token, path, ...versions] = process.argv.slice(2);
const say = (...words) => console.log(words.join(" "));
const long = { timeout: 300_000, resetTimeoutOnProgress: true };

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

for (const [i, version] of versions.entries()) {
  say("version", version);
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: "token " + token } },
    fetch: offering(version),
  });
  const client = new Client({ name: "ts-sdk-test", version: "1.0.0" });
  await client.connect(transport);
  say("protocol", transport.protocolVersion);
  const { tools } = await client.listTools();
  say("tools", tools.length);

  const res = await client.callTool({ name: "execute_cell", arguments: { path, cell_id: `c${2 * i}`, timeout: 120 } }, undefined, {
    ...long,
    onprogress: (p) => say("progress", p.message),
  });
  const text = res.content?.[0]?.text ?? "";
  say("result", res.isError ? "error" : "ok", text.replaceAll("\n", "\\n"));

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
  await client.close();
}
