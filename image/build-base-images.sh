#!/usr/bin/env bash
# Builds the two base images the Dockerfile needs without any image registry,
# for machines that reach Debian's apt mirrors but no registry:
#
#   RUNTIME_TAG  Debian bookworm (debootstrap, minbase) + ca-certificates, tini
#                and Python 3.11 (this machine's, see below): stands in for
#                python:3.11-slim-bookworm
#   BUILD_TAG    the same root filesystem + this machine's Go toolchain in
#                /usr/local/go: stands in for golang:1.26-bookworm
#
# Both come from one debootstrap, made into images with `docker import`. The
# certificate authorities this machine added locally are trusted in them.
# Images that already exist are kept (delete them to rebuild).
# Usage: image/build-base-images.sh RUNTIME_TAG BUILD_TAG   (as root; needs
# debootstrap, docker, go and python3 3.11)
set -euo pipefail

runtime_tag=${1:?usage: $0 RUNTIME_TAG BUILD_TAG}
build_tag=${2:?usage: $0 RUNTIME_TAG BUILD_TAG}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

have() { docker image inspect "$1" >/dev/null 2>&1; }

if have "$runtime_tag" && have "$build_tag"; then
	echo "base images $runtime_tag and $build_tag already exist"
	exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install debootstrap" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "debootstrap needs root" >&2; exit 1; }

work=$(mktemp -d /tmp/sidecar-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs

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

# Python: Debian's python3 is 3.11.2, but the pinned packages need >= 3.11.5
# (python:3.11-slim has the latest 3.11). So this machine's own Python 3.11
# (e.g. built by pyenv) goes to /usr/local, as in the official image, without
# its installed packages; Debian's python3 stays for the shared libraries.
pyprefix=$(python3 -c 'import sys; print(sys.base_prefix if sys.version_info[:2] == (3, 11) else "")')
if [ -n "$pyprefix" ] && [ "$pyprefix" != /usr ]; then
	echo "copying Python $(python3 -c 'import platform; print(platform.python_version())') from $pyprefix"
	tar -C "$pyprefix" -c --exclude='./lib/python3.11/site-packages/*' --exclude=./lib/python3.11/test \
		--exclude='__pycache__' --exclude='*.a' --exclude='./bin/pip*' . | tar -C "$rootfs/usr/local" -x
	chroot "$rootfs" ldconfig
	chroot "$rootfs" /usr/local/bin/python3 -c 'import ssl, sqlite3, ctypes, lzma, bz2, zlib, venv, ensurepip' ||
		{ echo "the copied Python does not work in the base image" >&2; exit 1; }
else
	echo "warning: no Python 3.11 of its own on this machine; the base keeps Debian's 3.11.2," \
		"older than some pinned packages need" >&2
fi

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
	# This machine's Go (go.mod's toolchain line or GOTOOLCHAIN=auto in the
	# Dockerfile fetch a newer one through the module proxy if needed).
	goroot=$(go env GOROOT)
	echo "copying Go $(go env GOVERSION) from $goroot"
	mkdir -p "$rootfs/usr/local/go"
	cp -a "$goroot"/. "$rootfs/usr/local/go/"
	import_image "$build_tag" "PATH=/usr/local/go/bin:/go/bin:$path" GOPATH=/go LANG=C.UTF-8
fi
