#!/usr/bin/env python3
"""Checks `chatter-parity hiragana` against upstream's `hiragana_normalize` (pykakasi 2.3.0), through files.

    swift build --product chatter-parity
    tools/kakasi/fetch-dictionaries.sh
    tools/fixtures/.venv/bin/python tools/parity/compare_hiragana.py [--binary .build/debug/chatter-parity] [--count 20000]

Draws seeded random strings (words of pykakasi's own kanwa dictionary glued with kana, katakana,
half-width kana, long-vowel and iteration marks, punctuation, digits, Latin, newlines and tabs,
variation selectors, emoji, and code points from the whole of Unicode) plus the committed fixture's
texts, and NFKD(lower()) of a fifth of them (what `MTLTokenizer.encode` hands `hiragana_normalize`),
writes them as JSON Lines, runs `chatter-parity hiragana` and compares every line with
`hiragana_normalize(text)` (or with pykakasi raising). Exit status 1 on any difference.
"""
import argparse
import json
import os
import pickle
import random
import subprocess
import sys
import tempfile
import unicodedata

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURE = os.path.join(ROOT, "Tests", "Fixtures", "tokenizers", "chatterbox_multilingual_ja.jsonl")


def random_texts(count, words, seed=20261207):
    rng = random.Random(seed)
    kana = [chr(c) for c in range(0x3041, 0x3097)] + [chr(c) for c in range(0x30A1, 0x30FF)]
    half = [chr(c) for c in range(0xFF61, 0xFFA0)]
    marks = list("々ゝゞヽヾーｰ―−〆〃仝") + list("、。「」『』（）！？・…～：，．０＞＜)]!,.")
    other = ["\n", "\t", "\r", " ", "\u3000", "\uFE00", "\uFE01", "\uFE02", "\U000E0100", "\uFE0F", "\u200d",
             "😀", "🎉", "\ue000", "\uf900", "\u3099", "\u309a", "\u0301"] + list("abcXYZ0129ＡＺａｚ０９①㍉℃한中αЖé")
    texts = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(0, 16)):
            r = rng.random()
            if r < 0.35:
                parts.append(rng.choice(words))
            elif r < 0.6:
                parts.append(rng.choice(kana))
            elif r < 0.68:
                parts.append(rng.choice(half))
            elif r < 0.8:
                parts.append(rng.choice(marks))
            elif r < 0.9:
                parts.append(rng.choice(other))
            elif r < 0.95:
                parts.append(chr(rng.randint(0x3400, 0x9FFF)))
            else:
                cp = rng.randint(0x20, 0x10FFFF)
                parts.append(chr(cp if not 0xD800 <= cp <= 0xDFFF else 0xFFFD))
        texts.append("".join(parts))
    return texts


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "debug", "chatter-parity"))
    parser.add_argument("--count", type=int, default=20000)
    args = parser.parse_args()

    from importlib.metadata import version

    import pykakasi
    from chatterbox.models.tokenizers.tokenizer import hiragana_normalize

    assert version("pykakasi") == "2.3.0", "the reference environment pins pykakasi 2.3.0 (requirements.txt)"
    with open(os.path.join(os.path.dirname(pykakasi.__file__), "data", "kanwadict4.db"), "rb") as f:
        kanwa = pickle.load(f)
    rng = random.Random(1)
    words = sorted(rng.sample(sorted(w for table in kanwa.values() for w in table), 20000))
    texts = [json.loads(line)["text"] for line in open(FIXTURE, encoding="utf-8").read().splitlines()[1:]]
    texts += random_texts(args.count, words)
    # What the tokenizer hands the Japanese step: NFKD(text.lower()) (MTLTokenizer.encode).
    texts += [unicodedata.normalize("NFKD", text.lower()) for text in texts[: len(texts) // 5]]

    expected = []
    for text in texts:
        try:
            expected.append(("hira", hiragana_normalize(text)))
        except IndexError:
            expected.append(("error", None))

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in.jsonl"), os.path.join(tmp, "out.jsonl")
        with open(src, "w", encoding="utf-8") as f:
            for text in texts:
                f.write(json.dumps({"text": text}) + "\n")
        subprocess.run([args.binary, "hiragana", "--input", src, "--output", dst], check=True)
        ours = [json.loads(line) for line in open(dst, encoding="utf-8").read().splitlines()]

    assert len(ours) == len(texts), (len(ours), len(texts))
    differences = 0
    raises = 0
    for text, (kind, value), got in zip(texts, expected, ours):
        if kind == "error":
            raises += 1
            ok = "error" in got
        else:
            ok = got.get("hira") == value
        if not ok:
            differences += 1
            if differences <= 20:
                print(f"DIFF {text!r}: upstream {kind} {value!r}, ours {got!r}")
    same = len(texts) - differences
    print(f"hiragana_normalize: {same}/{len(texts)} identical to upstream (pykakasi 2.3.0; {raises} where pykakasi raises)")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
