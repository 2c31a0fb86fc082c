#!/usr/bin/env bash
# Build one of the tests' Go servers into the millstream cache and print the binary's path.
#
#   go-build.sh gcs              fake-gcs-server (tests/infra/gcs)   -> $cache/gcs/gcs-server
#   go-build.sh pubsub           pstest (tests/infra/pubsub)         -> $cache/pubsub/pstest-server
#   go-build.sh prism [VERSION]  Beam's Prism runner                 -> $cache/prism/<version>/prism
#
# $cache is $MILLSTREAM_CACHE (default ~/.cache/millstream). A module of ours is rebuilt only when its Go
# sources, go.mod, go.sum or the Go version change (a sha256 stamp next to the binary), so a warm start
# costs one hash. Prism's version must equal the installed apache-beam's (the portable job API and the
# SDK harness are released together): it is VERSION, else $PRISM_VERSION, else read from the Python that
# runs the tests ($PYTHON, default the repository's .venv); a present binary of that version is reused.
# Modules come from the Go module proxy into the normal module cache (GOPATH), which survives between
# runs. Output: the absolute binary path as the LAST line of stdout. Exit 3: no Go toolchain (or no
# apache-beam to read Prism's version from); exit 2: a bad call.
set -euo pipefail

infra="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${MILLSTREAM_CACHE:-$HOME/.cache/millstream}"
me="go-build.sh"

usage() {
    echo "usage: $me gcs | pubsub | prism [VERSION]" >&2
    exit 2
}

[[ $# -ge 1 ]] || usage
target="$1"
case "$target" in
    gcs) what="the GCS test server"; module="$infra/gcs"; out_dir="$cache/gcs"; name="gcs-server" ;;
    pubsub) what="the Pub/Sub test server"; module="$infra/pubsub"; out_dir="$cache/pubsub"; name="pstest-server" ;;
    prism) what="Beam's Prism runner"; module=""; name="prism" ;;
    *) echo "$me: unknown target '$target'" >&2; usage ;;
esac
[[ $# -le 1 || "$target" == "prism" && $# -le 2 ]] || usage

if ! command -v go >/dev/null 2>&1; then
    echo "$me: the 'go' toolchain is not on PATH (needed to build $what)" >&2
    exit 3
fi

if [[ "$target" == "prism" ]]; then
    version="${2:-${PRISM_VERSION:-}}"
    if [[ -z "$version" ]]; then
        python="${PYTHON:-$infra/../../.venv/bin/python}"
        if ! version="$("$python" -c 'import apache_beam; print(apache_beam.__version__)' 2>/dev/null)"; then
            echo "$me: cannot read the apache-beam version from $python (install millstream[beam])" >&2
            exit 3
        fi
    fi
    out_dir="$cache/prism/$version"
fi
bin="$out_dir/$name"
stamp="$out_dir/$name.sha256"

sha256() { if command -v sha256sum >/dev/null 2>&1; then sha256sum; else shasum -a 256; fi; }

# Whether the binary is current: ours by its stamp (the Go version is part of it: a toolchain upgrade must
# not reuse an old binary silently), Prism's by its versioned path.
want=""
if [[ -n "$module" ]]; then
    want="$(cd "$module" && { cat $(ls *.go | LC_ALL=C sort) go.mod go.sum; go env GOVERSION; } | sha256 | cut -d' ' -f1)"
fi
current() {
    [[ -x "$bin" ]] || return 1
    [[ -z "$module" ]] || [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]
}

if current; then
    echo "$bin"
    exit 0
fi

mkdir -p "$out_dir"
# Serialise concurrent builds (parallel pytest sessions); the second one re-checks.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$out_dir/.build.lock"
    flock 9
fi
if current; then
    echo "$bin"
    exit 0
fi

tmp="$out_dir/tmp.$$"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"
echo "$me: building $name${version:+ v$version} (first run downloads modules; later runs reuse them)" >&2
if [[ -n "$module" ]]; then
    (cd "$module" && GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod" go build -o "$tmp/$name" .)
else
    GOBIN="$tmp" go install "github.com/apache/beam/sdks/v2/go/cmd/prism@v$version"
fi
mv -f "$tmp/$name" "$bin"
[[ -z "$module" ]] || printf '%s\n' "$want" >"$stamp"
echo "$bin"
