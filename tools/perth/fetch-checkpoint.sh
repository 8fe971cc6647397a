#!/usr/bin/env bash
# Fetches the real Perth watermarker checkpoint (perth_net_250000.pth.tar, MIT, Resemble AI) from the
# resemble-perth 1.0.1 wheel on PyPI, verifies the wheel and the checkpoint by sha256, and puts it in
# .cache/perth/ (git-ignored). Never committed: 37 MB. Idempotent; CI runs it before the tests.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dest="$root/.cache/perth"
checkpoint="$dest/perth_net_250000.pth.tar"
wheel_sha=65e9c37531b1a128a4a56226b75dece4521683cf3611b0b2a5ffe234f00c9342
checkpoint_sha=a15bce457ebc53ce5e6c9c3f11df78cf7ee2bf9cdab0a798902135b4c4027670

if [ -f "$checkpoint" ] && echo "$checkpoint_sha  $checkpoint" | sha256sum -c --quiet - 2>/dev/null; then
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download -q --no-deps --only-binary=:all: resemble-perth==1.0.1 -d "$tmp"
echo "$wheel_sha  $tmp/resemble_perth-1.0.1-py3-none-any.whl" | sha256sum -c --quiet -
mkdir -p "$dest"
python3 - "$tmp/resemble_perth-1.0.1-py3-none-any.whl" "$tmp/checkpoint" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel, wheel.open("perth/perth_net/pretrained/implicit/perth_net_250000.pth.tar") as src, open(sys.argv[2], "wb") as out:
    shutil.copyfileobj(src, out)
PY
echo "$checkpoint_sha  $tmp/checkpoint" | sha256sum -c --quiet -
mv "$tmp/checkpoint" "$checkpoint"
echo "Perth checkpoint: $checkpoint"
