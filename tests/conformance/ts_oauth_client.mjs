// Signs in to <hub>/services/mcp with the official TypeScript MCP SDK's
// OAuth client, as an MCP client given only the URL does: the 401 names
// the authorization server, the SDK registers itself (dynamic client
// registration) and asks for the person's authorization, which the Go test
// (tests/hub/oauth_test.go) gives in a real browser: the hub's login page,
// then the router's consent page. Lines for the test:
//
//   authorize <url>                 open this in the browser
//   scope <granted scopes>
//   tools <names, comma-separated>  tools/list
//   result <ok|error> <text>        execute_code "print(6*7)" in NOTEBOOK
//   refreshed <yes|no>              a refresh gave a new access token and refresh token
//   after-refresh <ok|error> <text> the same call with the refreshed token
//   reuse <refused|accepted> <why>  the first refresh token, used again
//   error <message>                 anything else that failed
//
// With the mode "read-only" (the test grants mcp:read alone), after tools:
//
//   read <ok|error> <text>          read_notebook of NOTEBOOK
//   insert <ok|error> <text>        insert_cell, which the grant does not allow
//   execute <ok|error> <text>       execute_code writing oauth-read-ran.txt, which it does not allow either
//   step-up <scope>                 if the SDK asks the person for more
//
// With the mode "cimd=<https URL>" the client is identified by the Client ID
// Metadata Document at that URL (the SDK's clientMetadataUrl) instead of
// registering; first of all it says where the document must send it back:
//
//   redirect <uri>                  the redirect URI the document must list
//
// Usage: node ts_oauth_client.mjs URL NOTEBOOK [read-only | cimd=<document URL>]
import http from "node:http";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError, discoverAuthorizationServerMetadata, refreshAuthorization } from "@modelcontextprotocol/sdk/client/auth.js";

const [url, notebook, mode] = process.argv.slice(2);
const say = (...words) => console.log(words.join(" "));
const texts = (res) => (res.content ?? []).filter((c) => c.type === "text").map((c) => c.text).join("\n").replaceAll("\n", "\\n");

// The redirect URI: a loopback server that takes the code.
let gotCode;
const code = new Promise((resolve) => (gotCode = resolve));
const callback = http.createServer((req, res) => {
  const u = new URL(req.url, "http://127.0.0.1");
  if (u.pathname !== "/callback") { // the browser's favicon.ico
    res.statusCode = 404;
    return res.end();
  }
  const q = u.searchParams;
  res.end(q.get("code") ? "Signed in: you may close this page." : "Not signed in: " + q.get("error_description"));
  if (q.get("code")) gotCode(q.get("code"));
  else say("error", "the authorization came back without a code:", q.get("error"), q.get("error_description"));
});
await new Promise((resolve) => callback.listen(0, "127.0.0.1", resolve));
const redirectUrl = `http://127.0.0.1:${callback.address().port}/callback`;
const metadataUrl = mode?.startsWith("cimd=") ? mode.slice("cimd=".length) : undefined;
if (metadataUrl) say("redirect", redirectUrl);

// Everything kept in memory: a real client would keep it on disk.
const provider = {
  get redirectUrl() { return redirectUrl; },
  get clientMetadataUrl() { return metadataUrl; },
  get clientMetadata() {
    return { client_name: "TS SDK test client", redirect_uris: [redirectUrl], grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"], token_endpoint_auth_method: "none" };
  },
  clientInformation() { return this.client; },
  saveClientInformation(info) { this.client = info; },
  tokens() { return this.saved; },
  saveTokens(tokens) { this.saved = tokens; },
  redirectToAuthorization(authorizationUrl) {
    if (this.asked) say("step-up", authorizationUrl.searchParams.get("scope"));
    else say("authorize", authorizationUrl.href);
    this.asked = true;
  },
  saveCodeVerifier(v) { this.verifier = v; },
  codeVerifier() { return this.verifier; },
};

async function connected() {
  const client = new Client({ name: "ts-oauth-test", version: "0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { authProvider: provider }));
  return client;
}

async function attempt(client, name, args) {
  try {
    const res = await client.callTool({ name, arguments: args }, undefined, { timeout: 300_000 });
    return [res.isError ? "error" : "ok", texts(res)];
  } catch (e) {
    return ["error", String(e.message ?? e).replaceAll("\n", "\\n")];
  }
}

const run = (client) => attempt(client, "execute_code", { path: notebook, code: "print(6*7)" });

try {
  const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
  try {
    await new Client({ name: "ts-oauth-test", version: "0" }).connect(transport);
    throw new Error("connected without signing in");
  } catch (e) {
    if (!(e instanceof UnauthorizedError)) throw e;
  }
  await transport.finishAuth(await code);
  say("scope", provider.saved.scope);

  let client = await connected();
  say("tools", (await client.listTools()).tools.map((t) => t.name).join(","));
  if (mode === "read-only") {
    say("read", ...(await attempt(client, "read_notebook", { path: notebook })));
    say("insert", ...(await attempt(client, "insert_cell", { path: notebook, source: "x = 1" })));
    say("execute", ...(await attempt(client, "execute_code", { path: notebook, code: "open('oauth-read-ran.txt', 'w').write('ran')" })));
    callback.close();
    process.exit(0);
  }
  await client.callTool({ name: "create_notebook", arguments: { path: notebook } });
  say("result", ...(await run(client)));
  await client.close();

  const issuer = new URL(url);
  const metadata = await discoverAuthorizationServerMetadata(issuer);
  const first = provider.saved;
  const refreshed = await refreshAuthorization(issuer, { metadata, clientInformation: provider.client, refreshToken: first.refresh_token, resource: new URL(url) });
  say("refreshed", refreshed.access_token !== first.access_token && refreshed.refresh_token !== first.refresh_token ? "yes" : "no");
  provider.saveTokens(refreshed);
  client = await connected();
  say("after-refresh", ...(await run(client)));
  await client.close();

  try {
    await refreshAuthorization(issuer, { metadata, clientInformation: provider.client, refreshToken: first.refresh_token, resource: new URL(url) });
    say("reuse", "accepted");
  } catch (e) {
    say("reuse", "refused", String(e.message ?? e).replaceAll("\n", "\\n"));
  }
} catch (e) {
  say("error", String(e.stack ?? e).replaceAll("\n", "\\n"));
}
callback.close();
process.exit(0);
