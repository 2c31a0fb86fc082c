#!/usr/bin/env bash
# Build Beam's Prism runner (Go) into the millstream cache and print the binary's path.
#
# Prism's version must equal the installed apache-beam's (the portable job API and the SDK harness are
# released together), so the version is read from the Python that runs the tests ($PYTHON, default the
# repository's .venv) unless PRISM_VERSION is set. The binary lives at
# $MILLSTREAM_CACHE/prism/<version>/prism; a present binary is reused, so a warm start costs one `stat`.
# Modules come from the Go module proxy into the normal module cache (~3 min from an empty cache).
# Output: the absolute binary path as the LAST line of stdout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"

if ! command -v go >/dev/null 2>&1; then
    echo "build.sh: the 'go' toolchain is not on PATH (needed to build Beam's Prism runner)" >&2
    exit 3
fi

version="${PRISM_VERSION:-}"
if [[ -z "$version" ]]; then
    if ! version="$("$python" -c 'import apache_beam; print(apache_beam.__version__)' 2>/dev/null)"; then
        echo "build.sh: cannot read the apache-beam version from $python (install millstream[beam])" >&2
        exit 3
    fi
fi

out_dir="${MILLSTREAM_CACHE:-$HOME/.cache/millstream}/prism/$version"
bin="$out_dir/prism"
if [[ -x "$bin" ]]; then
    echo "$bin"
    exit 0
fi

mkdir -p "$out_dir"
# Serialise concurrent builds (parallel pytest sessions); the second one re-checks the binary.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$out_dir/.build.lock"
    flock 9
fi
if [[ -x "$bin" ]]; then
    echo "$bin"
    exit 0
fi

tmp="$out_dir/tmp.$$"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"
echo "build.sh: building prism v$version (first run downloads modules; later runs reuse them)" >&2
GOBIN="$tmp" go install "github.com/apache/beam/sdks/v2/go/cmd/prism@v$version"
mv -f "$tmp/prism" "$bin"
echo "$bin"
