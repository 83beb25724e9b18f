#!/bin/sh
# Starts JupyterLab (and with it MCP at /mcp) on 0.0.0.0:$PORT, serving the
# notebooks in $NOTEBOOK_DIR. The lab always requires a token: $JUPYTER_TOKEN,
# or $JUPYTER_TOKEN_FILE, or a random one printed here. Extra arguments go to
# `jupyter lab` (passing --IdentityProvider.token= explicitly is the only way
# to run it without a token).
set -eu

port=${PORT:-8888}
notebook_dir=${NOTEBOOK_DIR:-/home/jovyan/work}

if [ -z "${JUPYTER_TOKEN:-}" ] && [ -z "${JUPYTER_TOKEN_FILE:-}" ]; then
	# An empty JUPYTER_TOKEN would switch authentication off: generate one.
	JUPYTER_TOKEN=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
	export JUPYTER_TOKEN
	shown=$JUPYTER_TOKEN
else
	shown='<your token>'
fi

url="http://127.0.0.1:$port"
cat <<EOF

  JupyterLab:  $url/lab?token=$shown
  MCP:         $url/mcp   (header  Authorization: token $shown)
  (replace 127.0.0.1:$port with the host address and port you published)

EOF

exec jupyter lab --no-browser --ip=0.0.0.0 --port="$port" --ServerApp.port_retries=0 \
	--ServerApp.root_dir="$notebook_dir" "$@"
