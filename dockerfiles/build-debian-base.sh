#!/usr/bin/env bash
# Build harness base images from Debian packages, for hosts that cannot pull
# from a container registry (air-gapped, or behind a mirror that only serves
# Debian and PyPI).
#
#   dockerfiles/build-debian-base.sh [PYTHON ...]     e.g. 3.9 3.11 3.13
#
# Each image is tagged harness-base:PYTHON (override the name with
# HARNESS_BASE_REPO). Use them with
#   --base-image 'harness-base:{python}'   or   HARNESS_BASE_IMAGE='harness-base:{python}'
# Needs root, debootstrap and a running Docker engine. An image that already
# exists is kept (remove it to rebuild). The mirror is DEBIAN_MIRROR, default
# the one apt uses here, else deb.debian.org.
set -euo pipefail

repo="${HARNESS_BASE_REPO:-harness-base}"
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(3.9 3.11 3.13)

suite_for() {
    case "$1" in
        3.9) echo bullseye ;;
        3.11) echo bookworm ;;
        3.13) echo trixie ;;
        *) echo "no Debian suite ships Python $1 (have 3.9, 3.11, 3.13)" >&2; return 2 ;;
    esac
}

default_mirror() {
    local m
    m=$(grep -hsoE '^URIs: *https?://[^ ]+/debian/?$' /etc/apt/sources.list.d/*.sources | head -n1 | sed 's/^URIs: *//') || true
    [ -n "$m" ] || m=$(grep -hsoE '^deb +https?://[^ ]+/debian/? ' /etc/apt/sources.list | head -n1 | awk '{print $2}') || true
    echo "${m:-http://deb.debian.org/debian}"
}

if ! command -v debootstrap >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
mirror="${DEBIAN_MIRROR:-$(default_mirror)}"

for py in "${versions[@]}"; do
    suite=$(suite_for "$py")
    tag="$repo:$py"
    if docker image inspect "$tag" >/dev/null 2>&1; then
        echo "$tag exists, kept"
        continue
    fi
    root=$(mktemp -d "/tmp/harness-base-$suite.XXXXXX")
    trap 'rm -rf "$root"' EXIT
    echo "building $tag from Debian $suite ($mirror)"
    start=$SECONDS
    debootstrap --variant=minbase \
        --include=python3,python3-venv,python3-pip,ca-certificates \
        "$suite" "$root" "$mirror" >"$root.log" 2>&1 || {
            tail -n 20 "$root.log" >&2; exit 1; }
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -c . | docker import \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["/bin/bash"]' \
        --change "LABEL org.harness.base=debian-$suite" \
        - "$tag" >/dev/null
    rm -rf "$root" "$root.log"
    trap - EXIT
    echo "$tag built in $((SECONDS - start)) s: $(docker run --rm "$tag" python3 --version)"
done
