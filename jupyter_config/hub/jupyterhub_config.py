"""JupyterHub for jupyter-mcp-sidecar on one Docker host (`make hub`, tests/hub).

Every user gets a container of the project's image (JupyterLab + MCP at
<hub>/user/<name>/mcp), spawned by DockerSpawner from the local image, with a
named volume for /home/jovyan/work, memory and CPU limits, and
jupyterhub-idle-culler stopping idle servers. The MCP router service, when its
binary is given, serves <hub>/services/mcp for every user.

Everything is set from the environment (the Makefile and tests/hub pass it):

  HUB_PORT            public port of the hub's proxy on 127.0.0.1 (8000)
  HUB_API_PORT        port of the hub's own API (8081), bound to the Docker bridge
  HUB_PROXY_API_PORT  configurable-http-proxy's REST API on 127.0.0.1 (8001)
  HUB_BRIDGE_IP       address the containers reach the hub at (default: the
                      gateway of Docker's "bridge" network)
  HUB_IMAGE           image of the users' servers (jupyter-mcp-sidecar)
  HUB_NAME_PREFIX     prefix of container and volume names (jupyter-mcp)
  HUB_ADMIN_TOKEN     API token of the "hub-admin" service (scripts: users, tokens, servers)
  HUB_SHARED_PASSWORD with it, the shared-password authenticator; without, the dummy one
  HUB_MEM_LIMIT       memory limit of each user's container, e.g. 2G (none)
  HUB_CPU_LIMIT       CPU limit of each user's container, e.g. 1.5 (none)
  HUB_IDLE_TIMEOUT    seconds without activity before a server is stopped (3600)
  HUB_CULL_EVERY      seconds between the culler's checks (default: its own, timeout/2)
  HUB_ACTIVITY_INTERVAL seconds between activity reports to the hub (300; short in tests)
  HUB_START_TIMEOUT   seconds a server may take to start (120)
  HUB_TOKEN_CACHE     seconds a user's server, and the MCP router, trust a token check
                      (10): a revoked token, or a deleted user's, is refused at
                      /user/<name>/ and at /services/mcp this soon
  HUB_ACTIVE_SERVER_LIMIT  most servers running at once (default: as many as the host's
                      memory holds at HUB_MEM_LIMIT each, 1 GiB kept for the rest; no limit without it)
  HUB_CONCURRENT_SPAWN_LIMIT  most servers starting at once (2 per CPU)
  HUB_PROFILES        server profiles a user (or the hub URL's ?profile=) picks at start,
                      e.g. "small=1G:0.5,large=4G:2" (name=memory:CPUs); none by default
  HUB_CHP             path of configurable-http-proxy (node_modules/.bin beside this file)
  HUB_MCP_ROUTER      path of jupyter-mcp-hub; when set, <hub>/services/mcp is served
  HUB_MCP_PORT        port of the MCP router on 127.0.0.1 (8002)
  HUB_MCP_DRAIN       seconds the MCP router lets calls in flight finish when the hub
                      stops (0.25); those still running are then handed back with
                      their execution handles, their runs going on. Longer delays the
                      hub's stop by more than itself
  HUB_PUBLIC_URL      the hub's URL as clients reach it (http://127.0.0.1:HUB_PORT):
                      MCP clients sign in (OAuth) at HUB_PUBLIC_URL/services/mcp
  HUB_OAUTH_ONLY      1: the hub URL takes only the sign-in's tokens, not hub API tokens
  HUB_OAUTH_GROUP_SCOPES   the most each hub group's members may grant an MCP client,
                      e.g. "students=mcp:read+mcp:edit,staff=mcp:read+mcp:edit+mcp:execute"
  HUB_OAUTH_DEFAULT_SCOPES with it, the most a user in none of those groups may grant
                      (all three)
  HUB_OAUTH_PRIVATE_CLIENT_METADATA  1: client metadata documents may be on loopback and
                      private addresses too (an intranet's clients); SSL_CERT_FILE, if set,
                      is the router's too (an intranet's CA)
  HUB_OAUTH_CLIENTS   a JSON file of MCP clients the admin pre-registers: [{"client_id",
                      "client_name", "redirect_uris", "client_secret" (optional)}]
  HUB_STATE_DIR       database, cookie secret, pid files (the working directory)
"""

import os
import sys

c = get_config()  # noqa: F821 (provided by JupyterHub when it loads this file)

here = os.path.dirname(os.path.abspath(__file__))
env = os.environ.get
state_dir = os.path.abspath(env("HUB_STATE_DIR", "."))
os.makedirs(state_dir, exist_ok=True)


def port(name, default):
    value = env(name, str(default))
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise SystemExit(f"{name}={value!r}: expected a port number")
    return int(value)


def seconds(name, default, what="seconds"):
    value = env(name, str(default))
    if not value.isdigit() or int(value) <= 0:
        raise SystemExit(f"{name}={value!r}: expected a whole number of {what} > 0")
    return int(value)


def decimal_seconds(name, default):
    value = env(name, default)
    try:
        number = float(value)
    except ValueError:
        number = -1
    if not 0 <= number <= 3600:
        raise SystemExit(f"{name}={value!r}: expected seconds, e.g. 0.25 or 2")
    return number


def bridge_gateway():
    """The Docker bridge's gateway: the host as the containers see it."""
    if env("HUB_BRIDGE_IP"):
        return env("HUB_BRIDGE_IP")
    import docker  # a dependency of dockerspawner

    try:
        net = docker.from_env().networks.get("bridge").attrs
    except Exception as e:  # noqa: BLE001 (any failure means the same to the user)
        raise SystemExit(f"cannot inspect Docker's bridge network ({e}): is Docker running? or set HUB_BRIDGE_IP")
    for cfg in net.get("IPAM", {}).get("Config") or []:
        if cfg.get("Gateway"):
            return cfg["Gateway"]
    # Some engines leave Gateway out of the default bridge: it is then the
    # address of the bridge's interface (docker0) on the host.
    import fcntl
    import socket
    import struct

    ifname = (net.get("Options") or {}).get("com.docker.network.bridge.name", "docker0")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            req = struct.pack("256s", ifname.encode()[:15])
            return socket.inet_ntoa(fcntl.ioctl(s.fileno(), 0x8915, req)[20:24])  # SIOCGIFADDR
    except OSError as e:
        raise SystemExit(f"cannot find the address of Docker's bridge {ifname} ({e}): set HUB_BRIDGE_IP")


hub_port = port("HUB_PORT", 8000)
bridge_ip = bridge_gateway()

# ---- where things listen ----
# The public side (the proxy) on loopback only. The hub's API listens on the
# bridge gateway, not on 0.0.0.0: the users' containers must reach it
# (jupyterhub-singleuser checks its token there and reports activity), the
# rest of the network need not.
c.JupyterHub.bind_url = f"http://127.0.0.1:{hub_port}"
c.JupyterHub.hub_bind_url = f"http://{bridge_ip}:{port('HUB_API_PORT', 8081)}"
c.JupyterHub.hub_connect_url = c.JupyterHub.hub_bind_url
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{port('HUB_PROXY_API_PORT', 8001)}"
c.ConfigurableHTTPProxy.command = [env("HUB_CHP", os.path.join(here, "node_modules", ".bin", "configurable-http-proxy"))]
c.ConfigurableHTTPProxy.pid_file = os.path.join(state_dir, "jupyterhub-proxy.pid")
c.JupyterHub.db_url = "sqlite:///" + os.path.join(state_dir, "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = os.path.join(state_dir, "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = os.path.join(state_dir, "jupyterhub.pid")

# ---- authentication: for trying it out, NOT for production ----
# The dummy authenticator lets anybody log in as any user with any password;
# the shared-password one with HUB_SHARED_PASSWORD (at least 8 characters).
# On a real hub use a real authenticator (OAuthenticator, LDAP, ...): the MCP
# side only relies on the hub's API tokens, whatever issued the login.
if env("HUB_SHARED_PASSWORD"):
    c.JupyterHub.authenticator_class = "shared-password"
    c.SharedPasswordAuthenticator.user_password = env("HUB_SHARED_PASSWORD")
else:
    c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True

# ---- users' servers: a container of the project's image each ----
import asyncio

from dockerspawner import DockerSpawner
from jupyterhub.httpclient import fetch
from jupyterhub.services import service as jupyterhub_services
from jupyterhub.utils import fmt_ip_url, url_path_join
from traitlets import Integer


class PromptDockerSpawner(DockerSpawner):
    """DockerSpawner whose start returns once the server answers.

    After a start the hub asks the server whether it answers with a random
    pause of up to 0.2, 0.4, 0.8, 1.6, 3.2 s... between the questions, so
    a lab up in 1 s is often taken into use a second or more later. This
    asks what the hub asks (any answer below 500 from <server>/api) every
    READY_INTERVAL seconds instead: the hub's own first question then finds
    it answering. The start stays bounded by Spawner.start_timeout; a
    container that exits meanwhile is left to the hub to report, and so is
    a server behind the hub's internal TLS.
    """

    READY_INTERVAL = 0.05
    # Checking that the container still runs asks Docker: once a second.
    RUNNING_CHECK_EVERY = 20

    async def start(self):
        ip, port = await super().start()
        if self.internal_ssl:
            return ip, port
        url = url_path_join(f"http://{fmt_ip_url(ip)}:{port}", self.server.base_url, "api")
        checks = 0
        while True:
            try:
                resp = await fetch(url, raise_for_status=False, allow_redirects=False)
                resp.release()
                if resp.status < 500:
                    return ip, port
            except Exception:  # noqa: BLE001 (not listening yet: refused, reset, disconnected)
                pass
            checks += 1
            if checks % self.RUNNING_CHECK_EVERY == 0 and await self.poll() is not None:
                return ip, port
            await asyncio.sleep(self.READY_INTERVAL)


c.JupyterHub.spawner_class = PromptDockerSpawner
c.DockerSpawner.image = env("HUB_IMAGE", "jupyter-mcp-sidecar")
# The image is built locally (`make image`); never ask a registry for it.
c.DockerSpawner.pull_policy = "never"
# The image's default command starts a plain lab; the hub needs the
# single-user server, which checks every request against the hub.
c.DockerSpawner.cmd = ["jupyterhub-singleuser"]
c.DockerSpawner.prefix = env("HUB_NAME_PREFIX", "jupyter-mcp")
# A stopped server's container goes away; its notebooks stay in the volume.
c.DockerSpawner.remove = True
c.DockerSpawner.notebook_dir = "/home/jovyan/work"
c.DockerSpawner.volumes = {c.DockerSpawner.prefix + "-work-{username}": "/home/jovyan/work"}
# On the default bridge the hub's proxy reaches each server at a port
# published on 127.0.0.1 only: nothing outside this host can reach a server
# except through the proxy, which sends every request to the server's own
# hub-token check.
c.DockerSpawner.use_internal_ip = False
c.DockerSpawner.host_ip = "127.0.0.1"
# A hub that restarts (an upgrade, a config change) takes the users' servers
# back as they run, kernels and MCP sessions included: only the calls in
# flight through the hub's proxy end. Stop servers through the API (or
# `docker rm -f`) when they must go.
c.JupyterHub.cleanup_servers = False
# How long a user's server trusts the hub's answer about a token
# (JupyterHub's default: 5 minutes), and the MCP router its answer about
# whose a token is: a revoked token, or a deleted user's, is refused at
# /user/<name>/ and at <hub>/services/mcp this soon.
token_cache = seconds("HUB_TOKEN_CACHE", 10)
c.Spawner.args = [f"--HubOAuth.cache_max_age={token_cache}"]
c.Spawner.start_timeout = seconds("HUB_START_TIMEOUT", 120)
c.Spawner.http_timeout = seconds("HUB_START_TIMEOUT", 120)
def byte_size(name, value):
    """Docker's memory notation: 512M, 2G, 1.5g, 1073741824."""
    units = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    number, unit = value.strip().lower().rstrip("b") or "0", ""
    if number and number[-1] in units:
        number, unit = number[:-1], number[-1]
    try:
        size = float(number) * units[unit]
    except ValueError:
        raise SystemExit(f"{name}={value!r}: expected a size like 512M or 2G")
    if size < 6 << 20:
        raise SystemExit(f"{name}={value!r}: Docker needs at least 6M")
    return int(size)


def host_memory():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


if env("HUB_MEM_LIMIT"):
    mem_limit = byte_size("HUB_MEM_LIMIT", env("HUB_MEM_LIMIT"))
    c.DockerSpawner.mem_limit = mem_limit
else:
    mem_limit = 0

# ---- profiles: limits picked when a server starts ----
# The spawn page shows them; through the API (and the hub's MCP URL,
# <hub>/services/mcp?profile=large) they arrive as user_options.profile.
# Without a profile the limits above apply.
profiles = {}
for item in filter(None, (p.strip() for p in env("HUB_PROFILES", "").split(","))):
    name, _, spec = item.partition("=")
    mem, _, cpu = spec.partition(":")
    if not name.replace("-", "").replace("_", "").isalnum() or not mem:
        raise SystemExit(f"HUB_PROFILES: {item!r}: expected name=memory[:CPUs], e.g. large=4G:2")
    try:
        profiles[name] = {"mem_limit": byte_size(f"HUB_PROFILES {name}", mem), "cpu_limit": float(cpu) if cpu else None}
    except ValueError:
        raise SystemExit(f"HUB_PROFILES: {item!r}: the CPUs must be a number, e.g. large=4G:2")

if profiles:
    def apply_profile(spawner, user_options):
        name = (user_options or {}).get("profile") or ""
        if not name:
            return
        if name not in profiles:
            from tornado import web  # an HTTPError's message reaches the client; others become "Invalid user options"

            raise web.HTTPError(400, f"unknown profile {name!r}: the profiles are {', '.join(profiles)}")
        spawner.mem_limit = profiles[name]["mem_limit"]
        if profiles[name]["cpu_limit"]:
            spawner.cpu_limit = profiles[name]["cpu_limit"]

    c.Spawner.apply_user_options = apply_profile
    c.Spawner.options_from_form = "simple"
    c.Spawner.options_form = "<label for='profile'>Profile</label><select name='profile' id='profile' class='form-control'>" + "".join(
        f"<option value='{n}'>{n}: {p['mem_limit'] / (1 << 30):.3g} GiB"
        + (f", {p['cpu_limit']:g} CPU" if p["cpu_limit"] else "") + "</option>"
        for n, p in profiles.items()
    ) + "</select>"

# ---- capacity: never start more servers than the host holds ----
# Beyond the limits the hub answers a start with 429, which the MCP router
# passes on as "at capacity, retry later" with Retry-After.
if env("HUB_ACTIVE_SERVER_LIMIT"):
    c.JupyterHub.active_server_limit = seconds("HUB_ACTIVE_SERVER_LIMIT", 1, "servers")
elif mem_limit:
    c.JupyterHub.active_server_limit = max(1, (host_memory() - (1 << 30)) // mem_limit)
c.JupyterHub.concurrent_spawn_limit = seconds("HUB_CONCURRENT_SPAWN_LIMIT", 2 * (os.cpu_count() or 1), "servers")
# The Retry-After of a start refused at that limit: JupyterHub suggests about
# the median start time as the least; its default (30-60 s) is for starts
# that pull images or wait for nodes, ours take seconds.
c.JupyterHub.spawn_throttle_retry_range = (3, 8)
if env("HUB_CPU_LIMIT"):
    try:
        c.DockerSpawner.cpu_limit = float(env("HUB_CPU_LIMIT"))
    except ValueError:
        raise SystemExit(f"HUB_CPU_LIMIT={env('HUB_CPU_LIMIT')!r}: expected a number of CPUs, e.g. 1.5")

# ---- services and roles ----
services = []
roles = []

# A token for scripts (create users, tokens, start and stop servers). Scopes
# rather than the deprecated `admin: True`.
if env("HUB_ADMIN_TOKEN"):
    services.append({"name": "hub-admin", "api_token": env("HUB_ADMIN_TOKEN")})
    roles.append({
        "name": "hub-admin",
        "description": "scripts of the hub's operator: users, their tokens and servers",
        "scopes": ["admin:users", "admin:servers", "tokens"],
        "services": ["hub-admin"],
    })

# One MCP URL for the whole hub: <hub>/services/mcp. The router acts with
# each client's own hub token (who it is, start its server, reach it), so
# its own role needs no scope at all. MCP clients that sign in (OAuth) get
# that hub token from the hub's login: the router is the hub's OAuth
# client, allowed to ask for no more than reaching, reading and starting
# the signed-in person's own server, and it shows its own consent page (so
# not the hub's). Every user may authorize it.
if env("HUB_MCP_ROUTER"):
    mcp_port = port("HUB_MCP_PORT", 8002)
    # The hub's stop: JupyterHub stops its services one after another (the
    # router first: listed first) and sees one gone only at its next look,
    # at growing random intervals (up to 0.1, 0.2, 0.4, 0.8 s, ...), so a
    # router that takes a second to stop holds the hub's stop half as long
    # again, at times four times as long. Calls end in milliseconds unless
    # they run code; those still running after the drain are handed back
    # with their execution handles, their runs going on (the users' servers
    # outlive the hub): a short drain loses nothing.
    drain = decimal_seconds("HUB_MCP_DRAIN", "0.25")
    # The key sealing the sign-in's tokens; made once, kept with the
    # hub's state (replicas of the router share it).
    oauth_key = os.path.join(state_dir, "mcp-oauth-key")
    if not os.path.exists(oauth_key):
        with os.fdopen(os.open(oauth_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            f.write(os.urandom(32))
    services.append({
        "name": "mcp",
        "url": f"http://127.0.0.1:{mcp_port}",
        "command": [
            env("HUB_MCP_ROUTER"),
            f"--listen=127.0.0.1:{mcp_port}",
            f"--proxy-url=http://127.0.0.1:{hub_port}",
            f"--start-timeout={seconds('HUB_START_TIMEOUT', 120)}s",
            f"--token-cache={token_cache}s",
            f"--public-url={env('HUB_PUBLIC_URL', f'http://127.0.0.1:{hub_port}')}",
            f"--oauth-key-file={oauth_key}",
            f"--audit-log={os.path.join(state_dir, 'mcp-audit.log')}",
            f"--drain={drain}s",
            # It stops when the hub that started it is gone, and replaces one
            # left running (its pid file), as JupyterHub does for its proxy.
            f"--hub-pid={os.getpid()}",
            f"--pid-file={os.path.join(state_dir, 'jupyter-mcp-hub.pid')}",
            *(["--oauth-only"] if env("HUB_OAUTH_ONLY") == "1" else []),
            *([f"--oauth-group-scopes={env('HUB_OAUTH_GROUP_SCOPES')}"] if env("HUB_OAUTH_GROUP_SCOPES") else []),
            *([f"--oauth-default-scopes={env('HUB_OAUTH_DEFAULT_SCOPES')}"] if env("HUB_OAUTH_DEFAULT_SCOPES") else []),
            *([f"--oauth-clients={os.path.abspath(env('HUB_OAUTH_CLIENTS'))}"] if env("HUB_OAUTH_CLIENTS") else []),
            *(["--oauth-private-client-metadata"] if env("HUB_OAUTH_PRIVATE_CLIENT_METADATA") == "1" else []),
        ],
        # Client metadata documents on an intranet may be signed by its own
        # CA: the hub's SSL_CERT_FILE is the router's.
        "environment": {"SSL_CERT_FILE": env("SSL_CERT_FILE")} if env("SSL_CERT_FILE") else {},
        "display": False,
        "oauth_client_allowed_scopes": ["access:servers!user", "read:servers!user", "start:servers!user"],
        "oauth_no_confirm": True,
    })
    c.JupyterHub.extra_user_scopes = {"access:services!service=mcp"}
    # Clients look for the sign-in's metadata at the hub's root too
    # (RFC 9728, RFC 8414: the path-inserted well-known URLs).
    c.Proxy.extra_routes = {
        "/.well-known/oauth-protected-resource/services/mcp": f"http://127.0.0.1:{mcp_port}",
        "/.well-known/oauth-authorization-server/services/mcp": f"http://127.0.0.1:{mcp_port}",
    }

# jupyterhub-idle-culler stops servers without activity for HUB_IDLE_TIMEOUT.
# MCP calls count as activity: they go through the server's proxy, which
# records it, and the server reports it to the hub.
# culler.py ends it at once on the hub's stop, and when the hub is gone.
cull = [sys.executable, os.path.join(here, "culler.py"), str(os.getpid()), f"--timeout={seconds('HUB_IDLE_TIMEOUT', 3600)}"]
if env("HUB_CULL_EVERY"):
    cull.append(f"--cull-every={seconds('HUB_CULL_EVERY', 1)}")
services.append({"name": "jupyterhub-idle-culler", "command": cull})
# How often servers report their last activity to the hub, and the hub
# collects its proxy's: the culler sees activity this late at most.
if env("HUB_ACTIVITY_INTERVAL"):
    activity = seconds("HUB_ACTIVITY_INTERVAL", 300)
    c.JupyterHub.last_activity_interval = activity
    c.Spawner.environment = {"JUPYTERHUB_ACTIVITY_INTERVAL": str(activity)}
roles.append({
    "name": "jupyterhub-idle-culler",
    "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    "services": ["jupyterhub-idle-culler"],
})

c.JupyterHub.services = services
c.JupyterHub.load_roles = roles


# JupyterHub starts a managed service again once it sees the process gone,
# which it looks for at its spawners' poll: every 30 s, and the services'
# spawner reads no configuration. Until then the proxy answers every MCP
# request with its own 503. Services' processes are polled every second
# instead (a look at the child's exit status, nothing more).
class PromptServiceSpawner(jupyterhub_services._ServiceSpawner):
    poll_interval = Integer(1)


jupyterhub_services._ServiceSpawner = PromptServiceSpawner
