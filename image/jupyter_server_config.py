"""Jupyter Server settings of the jupyter-mcp-sidecar image (/etc/jupyter).

Iframe embedding. By default Jupyter Server sends
``Content-Security-Policy: frame-ancestors 'self'; report-uri ...``: only pages
of the lab's own origin may frame it. JUPYTER_FRAME_ANCESTORS, a space-separated
list of origins (e.g. "https://a.example https://*.b.example"), adds those
origins to frame-ancestors. Nothing else changes: XSRF checks stay on and no
CORS header is added.
"""

import os
import re

c = get_config()  # noqa: F821 (provided by Jupyter when it loads this file)

# One CSP source expression per origin: scheme://host[:port], where the host
# may start with "*." (any subdomain). Quotes, ";" and "," are refused, so the
# variable cannot add other directives or weaken the policy with "*".
_ORIGIN = re.compile(r"^https?://(\*\.)?[A-Za-z0-9.-]+(:[0-9]{1,5})?$")

_ancestors = os.environ.get("JUPYTER_FRAME_ANCESTORS", "").split()
if _ancestors:
    _bad = [a for a in _ancestors if not _ORIGIN.match(a)]
    if _bad:
        raise ValueError(
            "JUPYTER_FRAME_ANCESTORS: %s: expected origins like https://app.example.com"
            % ", ".join(_bad)
        )
    # Replaces Jupyter's default policy for every page; API and file handlers
    # still append their own stricter directives to it.
    c.ServerApp.tornado_settings = {
        "headers": {
            "Content-Security-Policy": "frame-ancestors 'self' " + " ".join(_ancestors),
        },
    }
