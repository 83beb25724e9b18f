#!/usr/bin/env python3
"""Docker HEALTHCHECK: healthy when the Jupyter server of this container answers.

The port and base URL come from the server's runtime file (jpserver-<pid>.json),
so the check also works under jupyterhub-singleuser, where both are chosen by
the spawner. GET <base_url>api needs no token.
"""

import glob
import json
import os
import sys
import urllib.request

from jupyter_core.paths import jupyter_runtime_dir

for info_file in glob.glob(os.path.join(jupyter_runtime_dir(), "jpserver-*.json")):
    try:
        with open(info_file) as f:
            info = json.load(f)
        url = "http://127.0.0.1:%d%sapi" % (info["port"], info["base_url"])
        with urllib.request.urlopen(url, timeout=4) as resp:
            if resp.status == 200:
                sys.exit(0)
    except Exception:  # a stale file of a server that is gone: try the next
        continue
sys.exit(1)
