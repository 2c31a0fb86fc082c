#!/usr/bin/env bash
# Build the fake-gcs-server-based Cloud Storage test server into the millstream cache and print the binary's path.
#
# Rebuilds only when main.go, go.mod or go.sum changed (a sha256 stamp next to the binary), so a warm
# start costs one hash. Modules come from the Go module proxy into the normal module cache (GOPATH),
# which survives between runs. Output: the absolute binary path as the LAST line of stdout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out_dir="${MILLSTREAM_CACHE:-$HOME/.cache/millstream}/gcs"
bin="$out_dir/gcs-server"
stamp="$out_dir/gcs-server.sha256"

if ! command -v go >/dev/null 2>&1; then
    echo "build.sh: the 'go' toolchain is not on PATH (needed to build the GCS test server)" >&2
    exit 3
fi

sha256() { if command -v sha256sum >/dev/null 2>&1; then sha256sum; else shasum -a 256; fi; }

mkdir -p "$out_dir"
# The Go version is part of the stamp: a toolchain upgrade must not reuse an old binary silently.
want="$(cd "$here" && { cat main.go go.mod go.sum; go env GOVERSION; } | sha256 | cut -d' ' -f1)"

if [[ -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "$bin"
    exit 0
fi

# Serialise concurrent builds (parallel pytest sessions); the second one re-checks the stamp.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$out_dir/.build.lock"
    flock 9
fi
if [[ -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "$bin"
    exit 0
fi

tmp="$bin.tmp.$$"
trap 'rm -f "$tmp"' EXIT
echo "build.sh: building gcs-server (first run downloads modules; later runs reuse them)" >&2
(cd "$here" && GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod" go build -o "$tmp" .)
mv -f "$tmp" "$bin"
printf '%s\n' "$want" >"$stamp"
echo "$bin"
