#!/usr/bin/env bash
# Builds the two base images the Dockerfile needs without any image registry,
# for machines that reach Debian's apt mirrors but no registry:
#
#   RUNTIME_TAG  Debian bookworm (debootstrap, minbase) + ca-certificates, tini
#                and Debian's Python 3.11: stands in for python:3.11-slim-bookworm
#   BUILD_TAG    the same root filesystem + the official Go toolchain
#                (GO_VERSION) in /usr/local/go, fetched from the Go module
#                proxy by fetch-go.sh: stands in for golang:1.26-bookworm
#
# Both come from one debootstrap, made into images with `docker import`. The
# certificate authorities this machine added locally are trusted in them.
# Images that already exist are kept (delete them to rebuild).
# Usage: image/build-base-images.sh RUNTIME_TAG BUILD_TAG   (as root, on
# Debian or Ubuntu; needs debootstrap, docker, curl and python3)
set -euo pipefail

runtime_tag=${1:?usage: $0 RUNTIME_TAG BUILD_TAG}
build_tag=${2:?usage: $0 RUNTIME_TAG BUILD_TAG}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

have() { docker image inspect "$1" >/dev/null 2>&1; }

if have "$runtime_tag" && have "$build_tag"; then
	echo "base images $runtime_tag and $build_tag already exist"
	exit 0
fi
for tool in debootstrap curl python3; do
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
	# Go: the official toolchain from the Go module proxy; this machine's Go
	# plays no part.
	"$(dirname "$0")/fetch-go.sh" "$rootfs/usr/local/go"
	import_image "$build_tag" "PATH=/usr/local/go/bin:/go/bin:$path" GOPATH=/go LANG=C.UTF-8
fi
