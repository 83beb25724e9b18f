// The test's MCP Apps host: the official SDK's host side (AppBridge) loads a
// view in a sandboxed iframe and relays the view's tools/call to the test
// server (POST /call), which makes them on the real <lab>/mcp with the
// go-sdk. tests/integration/apps_test.go bundles this file with esbuild.
import { AppBridge, PostMessageTransport } from "@modelcontextprotocol/ext-apps/app-bridge";

window.host = { inits: 0, openedLinks: [], pwned: [], calls: 0, errors: [] };

// A notebook's script that escaped the view would report here (it cannot
// reach this page's globals from its opaque origin).
window.addEventListener("message", (e) => {
  if (e.data && typeof e.data === "object" && "pwned" in e.data) window.host.pwned.push(String(e.data.pwned));
});

// mountView renders the view html for one tool call, as a chat host does.
window.mountView = async (id, html, toolInput, toolResult) => {
  const iframe = document.createElement("iframe");
  iframe.id = id;
  iframe.name = id; // how the test finds the frame
  // allow-scripts only: the view runs at an opaque origin, cut off from
  // this page, its cookies and storage.
  iframe.setAttribute("sandbox", "allow-scripts");
  iframe.style.cssText = "width: 900px; height: 400px; border: 1px solid #999; display: block";
  document.body.appendChild(iframe);
  const bridge = new AppBridge(
    null,
    { name: "apps-test-host", version: "1.0.0" },
    { serverTools: {}, openLinks: {}, logging: {} },
    { hostContext: { theme: "light", displayMode: "inline", availableDisplayModes: ["inline"], platform: "web" } },
  );
  bridge.oncalltool = async (params) => {
    window.host.calls++;
    const r = await fetch("/call", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(params) });
    if (!r.ok) throw new Error(await r.text());
    return await r.json();
  };
  bridge.onopenlink = async ({ url }) => {
    window.host.openedLinks.push(url);
    return {};
  };
  bridge.onsizechange = ({ height }) => {
    if (height) iframe.style.height = Math.min(height + 2, 3000) + "px";
  };
  bridge.oninitialized = () => {
    window.host.inits++;
    bridge.sendToolInput({ arguments: toolInput });
    bridge.sendToolResult(toolResult);
  };
  bridge.onerror = (err) => window.host.errors.push(String(err));
  // Listen before the view's document exists, so its first message is seen.
  await bridge.connect(new PostMessageTransport(iframe.contentWindow, iframe.contentWindow));
  iframe.srcdoc = html;
};
