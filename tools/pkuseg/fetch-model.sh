#!/usr/bin/env bash
# Fetches what spacy-pkuseg 1.0.2's `pkuseg()` reads, which upstream's Chinese preprocessing runs
# (chatterbox-tts declares spacy-pkuseg), into .cache/pkuseg/spacy-pkuseg-1.0.2/ (git-ignored):
# - default.pkl (the post-processing word list, 4.5 MB) and LICENSE (MIT) from the spacy-pkuseg 1.0.2
#   wheel on PyPI, the wheel and both files verified by sha256;
# - features.msgpack and weights.npz, unzipped from spacy_ontonotes.zip, the GitHub release asset that
#   pkuseg() downloads on first use (spacy_pkuseg/config.py: URL and sha256, pinned here the same).
#   A copy pkuseg already downloaded ($PKUSEG_HOME or ~/.pkuseg/spacy_ontonotes.zip) is used when its
#   sha256 matches; PKUSEG_MODEL_ZIP=/path/to/spacy_ontonotes.zip names one explicitly.
# The sha256s of the unzipped files are recorded in SHA256SUMS, so that a rerun checks them (idempotent).
# Never committed. Without the model chatterstream codes Chinese unsegmented, with a warning (upstream
# without spacy-pkuseg); CHATTERSTREAM_PKUSEG_MODEL may point at another folder holding the three files.
# Exit status: 0 when everything is in place, 1 when something could not be fetched (said on stderr).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dest="${1:-$root/.cache/pkuseg/spacy-pkuseg-1.0.2}"
wheel=spacy_pkuseg-1.0.2-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl
# The wheel's URL on PyPI (what the model store downloads; this script asks pip for the same file):
# https://files.pythonhosted.org/packages/71/91/e6d754fdec6ebe96187679bb00cac61fc4eba6b08def0483ca92839e4122/$wheel
wheel_sha=eada7615a9055f6c9570d8acca652158d2e86c298d15aaa2e40126bae8017de3
default_sha=3cf450d95719d51883fa49291302b9032372064d86805b130bb2ea0223196c67
license_sha=9794864c3950e66d36c9ab8e8ff7741538909d9813f8991bae69d8c3495f8de5
model_url=https://github.com/explosion/spacy-pkuseg/releases/download/v0.0.26/spacy_ontonotes.zip
model_sha=b216e7f92de7ae285aeab8feba2faa8ea8216e5995ff6fb3d391cc8356db1bfe

sha_ok() { echo "$1  $2" | sha256sum -c --quiet - >/dev/null 2>&1; }
word_list_ok() { sha_ok "$default_sha" "$1/default.pkl" && sha_ok "$license_sha" "$1/LICENSE"; }
model_ok() { [ -f "$1/SHA256SUMS" ] && (cd "$1" && sha256sum -c --quiet SHA256SUMS >/dev/null 2>&1); }

if word_list_ok "$dest" && model_ok "$dest"; then
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$dest"

if ! word_list_ok "$dest"; then
    # This platform's wheel whatever the host: the one pinned (default.pkl is the same in every wheel).
    python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 --python-version 3.11 \
        --implementation cp --abi cp311 spacy-pkuseg==1.0.2 -d "$tmp"
    echo "$wheel_sha  $tmp/$wheel" | sha256sum -c --quiet -
    python3 - "$tmp/$wheel" "$tmp" <<'PY'
import shutil, sys, zipfile
names = {"spacy_pkuseg/dicts/default.pkl": "default.pkl", "spacy_pkuseg-1.0.2.dist-info/licenses/LICENSE": "LICENSE"}
with zipfile.ZipFile(sys.argv[1]) as wheel:
    for member, name in names.items():
        with wheel.open(member) as src, open(f"{sys.argv[2]}/{name}", "wb") as out:
            shutil.copyfileobj(src, out)
PY
    word_list_ok "$tmp"
    mv "$tmp/default.pkl" "$tmp/LICENSE" "$dest/"
fi

if ! model_ok "$dest"; then
    zip=""
    for candidate in "${PKUSEG_MODEL_ZIP:-}" "${PKUSEG_HOME:-$HOME/.pkuseg}/spacy_ontonotes.zip"; do
        if [ -n "$candidate" ] && [ -f "$candidate" ] && sha_ok "$model_sha" "$candidate"; then
            zip="$candidate"
            break
        elif [ -n "$candidate" ] && [ -f "$candidate" ]; then
            echo "fetch-model.sh: ignoring $candidate: its sha256 is not the pinned $model_sha" >&2
        fi
    done
    if [ -z "$zip" ]; then
        if ! python3 - "$model_url" "$tmp/spacy_ontonotes.zip" 2>"$tmp/download.err" <<'PY'
import shutil, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=30) as response, open(sys.argv[2], "wb") as out:
    shutil.copyfileobj(response, out)
PY
        then
            cat >&2 <<TXT
fetch-model.sh: could not download spacy-pkuseg's model from $model_url
  ($(tail -n 1 "$tmp/download.err"))
The word list is in place ($dest/default.pkl), the model is not: chatterstream will code Chinese text
unsegmented, with a warning, as upstream does without spacy-pkuseg. To finish, on a machine that can
reach github.com download spacy_ontonotes.zip (sha256 $model_sha) and rerun this script with
PKUSEG_MODEL_ZIP=/path/to/spacy_ontonotes.zip, or copy features.msgpack and weights.npz from it into
$dest (chatterstream reads them there).
TXT
            exit 1
        fi
        if ! sha_ok "$model_sha" "$tmp/spacy_ontonotes.zip"; then
            echo "fetch-model.sh: $model_url has sha256 $(sha256sum "$tmp/spacy_ontonotes.zip" | cut -d' ' -f1), not the pinned $model_sha; nothing installed" >&2
            exit 1
        fi
        zip="$tmp/spacy_ontonotes.zip"
    fi
    mkdir -p "$tmp/model"
    # pkuseg unzips every member into ~/.pkuseg/spacy_ontonotes/ and reads these two from there.
    python3 - "$zip" "$tmp/model" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as archive:
    for name in ("features.msgpack", "weights.npz"):
        with archive.open(name) as src, open(f"{sys.argv[2]}/{name}", "wb") as out:
            shutil.copyfileobj(src, out)
PY
    (cd "$tmp/model" && sha256sum features.msgpack weights.npz > SHA256SUMS)
    mv "$tmp/model/features.msgpack" "$tmp/model/weights.npz" "$tmp/model/SHA256SUMS" "$dest/"
fi

cat > "$dest/SOURCE" <<TXT
spacy-pkuseg 1.0.2's segmentation data, as its pkuseg() (model spacy_ontonotes, user_dict "default") reads it:
- default.pkl and LICENSE: wheel $wheel (sha256 $wheel_sha), spacy_pkuseg/dicts/default.pkl and
  dist-info/licenses/LICENSE.
- features.msgpack and weights.npz: unzipped from $model_url
  (sha256 $model_sha, pinned in spacy_pkuseg/config.py); their own sha256s are in SHA256SUMS.
Licence: spacy-pkuseg is MIT (LICENSE: ExplosionAI GmbH, the pkuseg authors); spacy_ontonotes.zip is a release asset of
the same repository, a model that spaCy's documentation describes as trained on OntoNotes 5.0.
Fetched by tools/pkuseg/fetch-model.sh; not part of chatterstream's sources.
TXT
echo "pkuseg model: $dest"
