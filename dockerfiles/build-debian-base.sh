#!/usr/bin/env bash
# Build harness base images from Debian packages, for hosts that cannot pull
# python:X.Y-slim: a thin wrapper around
#
#   python -m harness base-images [PYTHON ...]       e.g. 3.9 3.11 3.13
#
# Runs build the base images they need themselves; this builds them ahead of
# time. Needs root (debootstrap) and a running engine (HARNESS_ENGINE=podman for
# Podman). The mirror is DEBIAN_MIRROR, default the one apt uses here.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" -m harness base-images "$@"
