#!/usr/bin/env python3
"""Trains the small spacy-pkuseg model that chatterstream's pkuseg parity tests segment with.

    tools/fixtures/.venv/bin/python tools/pkuseg/train_test_model.py

The real model (``spacy_ontonotes``, a GitHub release asset) cannot be had here, so the tests use a
model trained by spacy-pkuseg 1.0.2's own trainer (``spacy_pkuseg.train``) and saved in its own format
(``features.msgpack`` + ``weights.npz``, exactly what ``pkuseg(model_name=...)`` loads), on a seeded
synthetic corpus:

- words of the wheel's ``dicts/default.pkl`` made only of ~70 common characters (so the words overlap
  and share characters: the word features ``w-1.``/``w1.`` and the ``ww.l.``/``ww.r.`` pairs fire,
  and segmentation has real choices), single characters, and the four-character idioms among them;
- numbers (ASCII, full-width, Chinese numerals), Latin words, full-width letters, and tokens holding
  pkuseg's feature keywords ``-._,|/*:`` (renamed to ``&`` before features are taken);
- full-width and ASCII punctuation as words of their own.

Writes ``Tests/Assets/pkuseg/synthetic/{features.msgpack,weights.npz}`` and a ``SOURCE.txt`` beside
them. Training shuffles with Python's ``random``; it is seeded, so a rerun with the same packages
writes the same files. The model is kept small (``Tests/`` size budget): a few thousand features.
"""
import os
import pickle
import random
import shutil
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "Tests", "Assets", "pkuseg", "synthetic")

CHARACTERS = ("我你他她们的是在有不了人大中国学生北京上海天气今很好会说话工作时间电脑机器习新年日月水火山"
              "东西南部市场发展经济社会主义研究院长和也都就要这那个来去出到对下子")
SINGLES = list("我你他她的是在有不了和也都就要这那个来去出到对很好会说")
NUMBERS = ["2024", "3", "15", "100", "１２", "２０２５", "三", "十五", "一百", "3.5", "50%", "１０％", "七千万"]
LATIN = ["AI", "iPhone", "ok", "CPU", "Python", "ＡＢＣ", "ｘｙｚ", "e-mail", "a/b", "x_y", "10:30", "A*B", "1,000", "C|D"]
PUNCTUATION = list("，。！？、；：“”（）《》…—") + [",", ".", "!", "?", "-", "/"]


def vocabulary(rng):
    import spacy_pkuseg
    default = os.path.join(os.path.dirname(spacy_pkuseg.__file__), "dicts", "default.pkl")
    with open(default, "rb") as f:
        words = pickle.load(f).strip().split("\n")
    allowed = set(CHARACTERS)
    candidates = sorted(w for w in words if 2 <= len(w) <= 4 and set(w) <= allowed)
    return rng.sample(candidates, 150)


def sentence(rng, words):
    parts = []
    for _ in range(rng.randint(4, 12)):
        roll = rng.random()
        if roll < 0.55:
            parts.append(rng.choice(words))
        elif roll < 0.75:
            parts.append(rng.choice(SINGLES))
        elif roll < 0.82:
            parts.append(rng.choice(NUMBERS))
        elif roll < 0.88:
            parts.append(rng.choice(LATIN))
        else:
            parts.append(rng.choice(PUNCTUATION))
    if rng.random() < 0.8:
        parts.append(rng.choice("。！？"))
    return " ".join(parts)


def main():
    import numpy as np
    import spacy_pkuseg

    rng = random.Random(20261208)
    words = vocabulary(rng)
    train = [sentence(rng, words) for _ in range(260)]
    test = [sentence(rng, words) for _ in range(40)]
    with tempfile.TemporaryDirectory() as work:
        train_file, test_file = os.path.join(work, "train.txt"), os.path.join(work, "test.txt")
        with open(train_file, "w", encoding="utf-8") as f:
            f.write("\n".join(train) + "\n")
        with open(test_file, "w", encoding="utf-8") as f:
            f.write("\n".join(test) + "\n")
        model_dir = os.path.join(work, "model")
        random.seed(7)  # the trainer's ADF shuffles with the global `random`
        spacy_pkuseg.train(train_file, test_file, model_dir, train_iter=8)
        os.makedirs(OUT, exist_ok=True)
        for name in ("features.msgpack", "weights.npz"):
            shutil.copy(os.path.join(model_dir, name), os.path.join(OUT, name))
    npz = np.load(os.path.join(OUT, "weights.npz"))
    sizes, w = npz["sizes"], npz["w"]
    with open(os.path.join(OUT, "SOURCE.txt"), "w") as f:
        f.write(
            "A small spacy-pkuseg model for chatterstream's tests, not a real segmentation model.\n"
            "Trained by tools/pkuseg/train_test_model.py with spacy-pkuseg 1.0.2's own trainer (spacy_pkuseg.train,\n"
            f"8 iterations) on {len(train)} seeded synthetic sentences built from {len(words)} words of the wheel's\n"
            "dicts/default.pkl, single characters, numbers, Latin and punctuation; saved in spacy-pkuseg's format\n"
            f"(features.msgpack, weights.npz). {int(sizes[1])} features, {int(sizes[0])} tags, w: {w.dtype} [{w.shape[0]}].\n"
            f"numpy {np.__version__}, Python {sys.version.split()[0]}.\n")
    for name in ("features.msgpack", "weights.npz"):
        print(f"{os.path.relpath(os.path.join(OUT, name), ROOT)}: {os.path.getsize(os.path.join(OUT, name))} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
