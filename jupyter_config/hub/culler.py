"""jupyterhub-idle-culler as a managed service of the hub that starts it.

    python culler.py HUB_PID [the culler's arguments]

JupyterHub stops a managed service with SIGINT and waits up to 30 s
before it sends SIGTERM, one service after another. The culler ends on
SIGINT only if it was not started with SIGINT ignored, as a hub started in
the background starts it; then every stop of the hub waits those 30 s out.
It keeps nothing worth a graceful end (an interrupted round is the next
round's), so here SIGINT and SIGTERM end it at once.

A hub that dies without stopping it (SIGKILL, a crash) leaves it running in
its own session, asking a hub that is not there: it exits (status 1) once
its parent is no longer HUB_PID, the hub's pid.
"""

import os
import signal
import sys
import threading
import time

PARENT_CHECK = 0.25  # seconds between looks for the hub


def watch_hub(hub_pid):
    # A process whose parent dies is given to another, so a parent pid
    # that changes is a hub that is gone (and a reused pid cannot pass for it).
    while os.getppid() == hub_pid:
        time.sleep(PARENT_CHECK)
    try:
        print(f"jupyterhub-idle-culler: the hub that started it (pid {hub_pid}) is gone: exiting", file=sys.stderr, flush=True)
    finally:
        os._exit(1)


def main():
    if len(sys.argv) < 2 or not sys.argv[1].isdigit():
        sys.exit("usage: culler.py HUB_PID [jupyterhub-idle-culler's arguments]")
    hub_pid = int(sys.argv[1])
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    if os.getppid() != hub_pid:
        sys.exit(f"jupyterhub-idle-culler: the hub that started it (pid {hub_pid}) is gone")
    threading.Thread(target=watch_hub, args=(hub_pid,), daemon=True).start()

    from jupyterhub_idle_culler import main as cull

    sys.argv = ["jupyterhub-idle-culler", *sys.argv[2:]]
    cull()


if __name__ == "__main__":
    main()
