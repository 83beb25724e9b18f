# JupyterLab with jupyter-mcp-sidecar in one image: the lab at :8888/lab, MCP at
# :8888/mcp, both behind the lab's token.
#
#   docker build -t jupyter-mcp-sidecar .
#   docker run -p 127.0.0.1:8888:8888 -v jupyter-work:/home/jovyan/work jupyter-mcp-sidecar
#
# Without a registry, `make image` builds local stand-ins for the two base
# images (image/build-base-images.sh) and passes them as BUILD_IMAGE and
# RUNTIME_IMAGE. Builds with the classic builder and with BuildKit.

ARG BUILD_IMAGE=golang:1.26-bookworm
ARG RUNTIME_IMAGE=python:3.11-slim-bookworm

# ---- build: a static sidecar ----
FROM ${BUILD_IMAGE} AS build
# GOTOOLCHAIN=auto: a base with an older Go fetches the one go.mod asks for.
ENV CGO_ENABLED=0 GOTOOLCHAIN=auto GOFLAGS=-trimpath
WORKDIR /src
COPY go.mod go.sum ./
COPY sidecar ./sidecar
# The version (make passes the git tag's, see jupyter_config/version.py):
# the same in the binary, the wheel and the image's label.
ARG VERSION=0.0.0
RUN go build -ldflags "-s -w -X main.version=${VERSION}" -o /out/jupyter-mcp-sidecar ./sidecar/cmd/jupyter-mcp-sidecar \
    && go env GOOS GOARCH | paste -sd/ > /out/target
# The hub's MCP router (<hub>/services/mcp), 7 MB: on a cluster it runs from
# this image beside the hub (jupyter_config/hub/z2jh). Outside /out, which is
# the wheel's input.
RUN go build -ldflags "-s -w -X main.version=${VERSION}" -o /hub/jupyter-mcp-hub ./sidecar/cmd/jupyter-mcp-hub

# ---- wheel: the jupyter-mcp-sidecar wheel `make wheel` builds, around that binary ----
# The build image has no pip; the runtime base has. The wheel is built by the
# same backend and hook as `make wheel`, given the binary instead of Go.
FROM ${RUNTIME_IMAGE} AS wheel
ARG VERSION=0.0.0
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY jupyter_config /src/jupyter_config
COPY --from=build /out /out
RUN python3 -m venv /tmp/build \
    && /tmp/build/bin/pip install --quiet -r /src/jupyter_config/build-requirements.txt \
    && JUPYTER_MCP_SIDECAR_BINARY=/out/jupyter-mcp-sidecar JUPYTER_MCP_SIDECAR_TARGET="$(cat /out/target)" \
       JUPYTER_MCP_SIDECAR_VERSION="${VERSION}" \
       /tmp/build/bin/python -m build -q --no-isolation --wheel -o /dist /src/jupyter_config

# ---- runtime: JupyterLab, the proxy extension and the sidecar ----
FROM ${RUNTIME_IMAGE}

# tini as PID 1 forwards signals and reaps orphaned processes (kernels' children).
# The offline base has it already; the official python image gets it from apt.
RUN command -v tini >/dev/null || { apt-get update \
      && apt-get install -y --no-install-recommends tini \
      && rm -rf /var/lib/apt/lists/*; }

# The usual notebook user of Jupyter images: uid/gid 1000, notebooks in ~/work.
RUN groupadd --gid 1000 jovyan \
    && useradd --create-home --uid 1000 --gid 1000 --shell /bin/bash jovyan \
    && mkdir /home/jovyan/work && chown jovyan:jovyan /home/jovyan/work

# Python packages, all pinned: the project's (JupyterLab, jupyter-server-proxy,
# ipykernel...) and the image's own (jupyterhub for jupyterhub-singleuser).
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY jupyter_config/requirements.txt /tmp/req/requirements.txt
COPY image/requirements.txt /tmp/req/image-requirements.txt
# Without rfc3987-syntax (jsonschema's optional checker of the "iri"
# formats, which no Jupyter schema uses): importing it builds ~35 Lark
# parsers, most of a second of every server's start (jupyter_events
# imports jsonschema's format checkers as the server starts).
RUN python3 -m venv /opt/venv \
    && pip install --quiet -r /tmp/req/requirements.txt -r /tmp/req/image-requirements.txt \
    && pip uninstall --quiet --yes rfc3987-syntax \
    && rm -rf /tmp/req

# jupyter-mcp-sidecar from its wheel, as everyone installs it: the proxy
# extension (serves <lab>/mcp, enabled through its data file in
# /opt/venv/etc/jupyter/jupyter_server_config.d) with the sidecar inside; on
# PATH too, for `jupyter-mcp-sidecar --version`.
COPY --from=wheel /dist /tmp/dist
RUN pip install --quiet --no-deps /tmp/dist/*.whl && rm -rf /tmp/dist \
    && ln -s "$(python3 -c 'import jupyter_mcp_sidecar_proxy as p; print(p.BUNDLED_SIDECAR)')" /usr/local/bin/jupyter-mcp-sidecar
COPY --from=build /hub/jupyter-mcp-hub /usr/local/bin/jupyter-mcp-hub
ARG VERSION=0.0.0
LABEL org.opencontainers.image.title=jupyter-mcp-sidecar org.opencontainers.image.version=${VERSION}

# Server settings (listen address, iframe embedding) for every way the image
# is started, including jupyterhub-singleuser.
COPY image/jupyter_server_config.py /etc/jupyter/jupyter_server_config.py
COPY image/start.sh /usr/local/bin/jupyter-mcp-start
COPY image/healthcheck.py /usr/local/bin/jupyter-mcp-healthcheck
# (the classic builder has no COPY --chmod; a checkout may lose the x bits)
RUN chmod 0755 /usr/local/bin/jupyter-mcp-start /usr/local/bin/jupyter-mcp-healthcheck

USER 1000:1000
ENV HOME=/home/jovyan SHELL=/bin/bash
# The server's working directory, where jupyter-collaboration keeps its
# .jupyter_ystore.db: home, outside the notebooks' volume.
WORKDIR /home/jovyan
EXPOSE 8888
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 CMD ["jupyter-mcp-healthcheck"]
ENTRYPOINT ["tini", "-g", "--"]
# JupyterHub spawners replace this with jupyterhub-singleuser.
CMD ["jupyter-mcp-start"]
