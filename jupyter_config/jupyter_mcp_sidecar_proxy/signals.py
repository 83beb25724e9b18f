"""How the Jupyter server stops with a sidecar running: a stop signal
reaches the sidecar first and the server stops once it has exited, and the
process exits once the server has stopped.
"""

import asyncio
import signal
import threading


# How long a stop signal waits for the sidecar to exit before the server
# stops anyway (docker stop kills after 10 s).
CHILD_EXIT_WAIT = 8


def stop_through_jupyter_on_signal(serverapp):
    """Make SIGTERM and SIGINT stop the server by Jupyter's own shutdown path.

    When jupyter-server-proxy starts the sidecar, its process supervisor
    (simpervisor) takes over both signals: it forwards the signal to its
    children and then raises SystemExit wherever the main thread happens to
    be. When that is inside a Tornado callback that logs and swallows
    exceptions ("Uncaught exception ... SystemExit: 0"), the exit is lost and
    the server runs on until it is killed (seen in CI). Here the children
    still get the signal first, then the server stops as Jupyter's own SIGTERM
    handler does: it stops accepting, shuts kernels down, lets extensions save
    their documents and ends the loop.

    The server stops only once the children it forwarded the signal to have
    exited (at most ``CHILD_EXIT_WAIT`` seconds): the sidecar writes the
    agent's edits that the collaboration rooms have not saved yet before it
    exits, and the rooms, which the server's stop closes without saving,
    must still run meanwhile."""
    try:
        from simpervisor import atexitasync
    except ImportError:
        return
    if not (hasattr(atexitasync, "_handlers") and hasattr(atexitasync, "_handle_signal")):
        serverapp.log.warning("jupyter-mcp-sidecar: unknown simpervisor; signals keep its handler")
        return

    waiting = []  # set while a stop waits for the children

    def forward_then_stop(signum, frame):
        children = []
        for forward in list(atexitasync._handlers):
            forward(signum)
            child = getattr(forward, "__self__", None)  # a SupervisedProcess
            if getattr(child, "running", False) and getattr(child, "proc", None) is not None:
                children.append(child.proc)
        if waiting:  # a second signal (Jupyter's ^C ^C): the stop is on its way
            return
        if not children:
            serverapp._signal_stop(signum, frame)
            return
        waiting.append(signum)

        async def stop_once_exited():
            try:
                await asyncio.wait_for(asyncio.gather(*(c.wait() for c in children)), CHILD_EXIT_WAIT)
            except Exception as e:  # a timeout, or a child already reaped
                serverapp.log.warning("jupyter-mcp-sidecar: stopping without waiting for the sidecar: %r", e)
            serverapp._signal_stop(signum, frame)

        loop = serverapp.io_loop.asyncio_loop
        loop.call_soon_threadsafe(lambda: loop.create_task(stop_once_exited()))

    # simpervisor installs the module's _handle_signal when it starts its first
    # child; replace it before that happens (and again if it already did).
    atexitasync._handle_signal = forward_then_stop
    if getattr(atexitasync, "signal_handler_set", False):
        signal.signal(signal.SIGTERM, forward_then_stop)
        signal.signal(signal.SIGINT, forward_then_stop)


def end_idle_worker_threads_at_exit(serverapp):
    """Let the server process exit once it has stopped.

    jupyter-collaboration's stores run blocking work on AnyIO worker threads.
    Those are non-daemon threads that wait on their queue with no timeout and
    are told to stop only when AnyIO's root task ends, which never happens
    under Tornado; so after a SIGTERM the server shuts down, saves, and then
    hangs in threading._shutdown until it is killed (docker stop: 10 s, then
    SIGKILL). Before Python joins the non-daemon threads, each worker is sent
    AnyIO's own stop message, queued behind any job it still runs, so
    pending writes finish and nothing is lost."""
    try:
        from anyio._backends._asyncio import WorkerThread
    except ImportError:
        return
    register = getattr(threading, "_register_atexit", None)
    if register is None:  # a Python without the hook: the old behaviour
        serverapp.log.warning("jupyter-mcp-sidecar: cannot register the thread-exit hook")
        return

    def stop_workers():
        for thread in threading.enumerate():
            if isinstance(thread, WorkerThread) and thread.is_alive():
                thread.queue.put(None)

    register(stop_workers)
