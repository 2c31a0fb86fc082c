#!/usr/bin/env bash
# Install Debian's headless Chromium and its driver for the browser tests, once, and print chromium's path.
#
# The browser tests drive /usr/bin/chromium with Playwright (pip's playwright, never `playwright install`:
# the network is closed apart from package registries). Debian's packages are the one browser build that
# installs here. A warm start costs one `test -x`. Output: the chromium path as the LAST line of stdout.
set -euo pipefail

bin=/usr/bin/chromium
if [[ -x "$bin" ]]; then
    echo "$bin"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install.sh: no apt-get here; install chromium by hand (needed by the browser tests)" >&2
    exit 3
fi
if [[ "$(id -u)" != 0 ]]; then
    echo "install.sh: chromium is missing and installing it needs root (apt-get install chromium)" >&2
    exit 3
fi
# Serialise concurrent installs (parallel pytest sessions); the second one re-checks.
if command -v flock >/dev/null 2>&1; then
    mkdir -p "${MILLSTREAM_CACHE:-$HOME/.cache/millstream}"
    exec 9>"${MILLSTREAM_CACHE:-$HOME/.cache/millstream}/.chromium.lock"
    flock 9
fi
if [[ ! -x "$bin" ]]; then
    echo "install.sh: installing chromium and chromium-driver from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends chromium chromium-driver fonts-dejavu-core >&2
fi
echo "$bin"
