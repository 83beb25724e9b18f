"""JupyterHub, its process ending as soon as the hub has stopped.

    python launch.py -f jupyterhub_config.py   (the arguments of `jupyterhub`)

On SIGTERM or SIGINT JupyterHub stops its services and its proxy, commits
its database and removes its pid file; then Python finalizes the objects of
the whole application, a few hundred thousand, which has nothing left to do
and on a busy host takes seconds, far longer than the rest of the stop. So
once JupyterHub returns, its log is flushed and the process ends at once,
with JupyterHub's exit status.
"""

import logging
import os
import sys
import traceback


def main():
    from jupyterhub.app import main as jupyterhub

    status = 1
    try:
        jupyterhub()
        status = 0
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            status = e.code or 0
        else:
            print(e.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(status)


if __name__ == "__main__":
    main()
