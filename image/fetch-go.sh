#!/usr/bin/env bash
# Fetches the official Go toolchain into DEST (e.g. /usr/local/go) as the Go
# module proxy serves it to GOTOOLCHAIN (module golang.org/toolchain), for
# machines and images without a Go of their own. Needs curl and python3.
# Usage: image/fetch-go.sh DEST   (GO_VERSION picks another version)
set -euo pipefail

version=${GO_VERSION:-1.26.8} # the Go of the Dockerfile's golang:1.26 base
dest=${1:?usage: $0 DEST}
proxy=${GOPROXY:-https://proxy.golang.org}
proxy=${proxy%%[,|]*}
case $proxy in direct | off) proxy=https://proxy.golang.org ;; esac
arch=$(uname -m)
case $arch in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; esac
url=$proxy/golang.org/toolchain/@v/v0.0.1-go$version.linux-$arch.zip

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "fetching Go $version from $url"
curl -fsSL --retry 3 -o "$work/go.zip" "$url" ||
	{ echo "could not fetch $url: set GOPROXY to a Go module proxy" >&2; exit 1; }
python3 -m zipfile -e "$work/go.zip" "$work/x"
# The module zip nests the tree in golang.org/toolchain@<version>/ and keeps
# no file modes.
rm -rf "$dest"
mkdir -p "$(dirname "$dest")"
mv "$work"/x/golang.org/toolchain@*/ "$dest"
chmod 0755 "$dest"/bin/* "$dest"/pkg/tool/*/*
