#!/usr/bin/env bash
# Fetches the three dictionaries of pykakasi 2.3.0 that upstream's hiragana_normalize reads
# (kanwadict4.db, itaijidict4.db, halfkana3.db: Python pickles, 9.8 MB) from the pykakasi 2.3.0 wheel on
# PyPI, verifies the wheel and each file by sha256, and puts them with the wheel's licence (COPYING,
# GPL-3.0-or-later: the KAKASI dictionary, Hiroshi Miura and contributors, and a part of UniDic) in
# .cache/kakasi/pykakasi-2.3.0/ (git-ignored). Never committed: GPL-3.0 data the user fetches.
# Idempotent; CI runs it before the tests. Swift reads the pickles as they are (no Python at run time).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dest="${1:-$root/.cache/kakasi/pykakasi-2.3.0}"
wheel=pykakasi-2.3.0-py3-none-any.whl
wheel_sha=26d21b090048ff45c6a4d8e962426b7951767216008ec30358e8a9d74af77f29
files="kanwadict4.db:dbecf9679f2fb0f4729081e5ae9346ec19aa7e7e62dfc6ab0df466af2aa1c438
itaijidict4.db:86f35a2d12d503d4e5e1960a955028c35b13a5c0d0634c1f69c95e325d81c7b1
halfkana3.db:6c8b2ba3bbf4c7c0d7c8dd1a4fdcf4fb2c830d00245ad7b5722db5c3a9a5a992"

verified() {
    for entry in $files; do
        echo "${entry#*:}  $1/${entry%%:*}" | sha256sum -c --quiet - >/dev/null 2>&1 || return 1
    done
    [ -f "$1/COPYING" ]
}
if verified "$dest"; then
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download -q --no-deps --only-binary=:all: pykakasi==2.3.0 -d "$tmp"
echo "$wheel_sha  $tmp/$wheel" | sha256sum -c --quiet -
mkdir -p "$tmp/out"
python3 - "$tmp/$wheel" "$tmp/out" <<'PY'
import shutil, sys, zipfile
names = {"pykakasi/data/kanwadict4.db": "kanwadict4.db", "pykakasi/data/itaijidict4.db": "itaijidict4.db",
         "pykakasi/data/halfkana3.db": "halfkana3.db", "pykakasi-2.3.0.dist-info/COPYING": "COPYING"}
with zipfile.ZipFile(sys.argv[1]) as wheel:
    for member, name in names.items():
        with wheel.open(member) as src, open(f"{sys.argv[2]}/{name}", "wb") as out:
            shutil.copyfileobj(src, out)
PY
cat > "$tmp/out/SOURCE" <<TXT
pykakasi 2.3.0 (wheel $wheel, sha256 $wheel_sha), pykakasi/data/*.db and dist-info/COPYING.
Licence: GPL-3.0-or-later (see COPYING). Fetched by tools/kakasi/fetch-dictionaries.sh; not part of chatterstream's sources.
TXT
verified "$tmp/out"
mkdir -p "$dest"
for name in kanwadict4.db itaijidict4.db halfkana3.db COPYING SOURCE; do
    mv "$tmp/out/$name" "$dest/$name"
done
echo "kakasi dictionaries: $dest"
