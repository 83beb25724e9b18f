#!/usr/bin/env bash
# Builds the two base images the Dockerfile needs without any image registry,
# for machines that reach Debian's apt mirrors but no registry:
#
#   RUNTIME_TAG  Debian bookworm (debootstrap, minbase) + ca-certificates, tini
#                and Debian's Python 3.11: stands in for python:3.11-slim-bookworm
#   BUILD_TAG    the same root filesystem + the official Go toolchain
#                (GO_VERSION) in /usr/local/go, fetched from the Go module
#                proxy: stands in for golang:1.26-bookworm
#
# Both come from one debootstrap, made into images with `docker import`. The
# certificate authorities this machine added locally are trusted in them.
# Images that already exist are kept (delete them to rebuild).
# Usage: image/build-base-images.sh RUNTIME_TAG BUILD_TAG   (as root, on
# Debian or Ubuntu; needs debootstrap, docker and curl)
set -euo pipefail

runtime_tag=${1:?usage: $0 RUNTIME_TAG BUILD_TAG}
build_tag=${2:?usage: $0 RUNTIME_TAG BUILD_TAG}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
go_version=${GO_VERSION:-1.26.8}

have() { docker image inspect "$1" >/dev/null 2>&1; }

if have "$runtime_tag" && have "$build_tag"; then
	echo "base images $runtime_tag and $build_tag already exist"
	exit 0
fi
for tool in debootstrap curl dpkg; do
	command -v $tool >/dev/null || { echo "$tool is missing: apt-get install $tool" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "debootstrap needs root" >&2; exit 1; }

work=$(mktemp -d /tmp/sidecar-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs

# Python is Debian's python3 (3.11.2), the minor version of
# python:3.11-slim-bookworm; the pins in jupyter_config/requirements.txt all
# install on it (`make lock` checks that).
echo "debootstrap bookworm from $mirror (a few minutes)..."
debootstrap --variant=minbase --include=ca-certificates,python3,python3-venv,tini \
	bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
	{ tail -30 "$work/debootstrap.log" >&2; exit 1; }
# Keep the image small and make apt inside it work like in the official images.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
echo "deb $mirror bookworm main" >"$rootfs/etc/apt/sources.list"
# Trust the certificate authorities this machine added locally (e.g. a TLS
# proxy in front of PyPI and the Go module proxy), and have pip use the system
# bundle, so the build reaches the same registries as the host.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
	cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
	chroot "$rootfs" update-ca-certificates >/dev/null 2>&1
fi
printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$rootfs/etc/pip.conf"

import_image() { # import_image TAG ENV...: the root filesystem as an image
	local tag=$1
	shift
	local changes=()
	for e in "$@"; do changes+=(--change "ENV $e"); done
	tar -C "$rootfs" --numeric-owner -c . | docker import "${changes[@]}" - "$tag" >/dev/null
	echo "imported $tag"
}

path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
have "$runtime_tag" || import_image "$runtime_tag" "PATH=$path" LANG=C.UTF-8

if ! have "$build_tag"; then
	# Go: the official toolchain, as the Go module proxy serves it to
	# GOTOOLCHAIN (module golang.org/toolchain); this machine's Go plays no part.
	proxy=${GOPROXY:-https://proxy.golang.org}
	proxy=${proxy%%[,|]*}
	case $proxy in direct | off) proxy=https://proxy.golang.org ;; esac
	url=$proxy/golang.org/toolchain/@v/v0.0.1-go$go_version.linux-$(dpkg --print-architecture).zip
	echo "fetching Go $go_version from $url"
	curl -fsSL --retry 3 -o "$rootfs/tmp/go.zip" "$url" ||
		{ echo "could not fetch $url: set GOPROXY to a Go module proxy, or GO_VERSION" >&2; exit 1; }
	# The module zip nests the tree in golang.org/toolchain@<version>/ and
	# keeps no file modes.
	chroot "$rootfs" python3 -m zipfile -e /tmp/go.zip /tmp/go
	mv "$rootfs"/tmp/go/golang.org/toolchain@*/ "$rootfs/usr/local/go"
	rm -rf "$rootfs/tmp/go.zip" "$rootfs/tmp/go"
	chmod 0755 "$rootfs"/usr/local/go/bin/* "$rootfs"/usr/local/go/pkg/tool/*/*
	# (no /proc in the chroot: the go command cannot find its root alone)
	chroot "$rootfs" env GOROOT=/usr/local/go /usr/local/go/bin/go version >/dev/null 2>&1 ||
		{ echo "the fetched Go does not run in the base image" >&2; exit 1; }
	import_image "$build_tag" "PATH=/usr/local/go/bin:/go/bin:$path" GOPATH=/go LANG=C.UTF-8
fi
