#!/usr/bin/env python3
"""Checks `chatter-parity tokenize` against upstream's English or multilingual text front end, end to end through files.

    swift build --product chatter-parity
    tools/fixtures/.venv/bin/python tools/parity/compare_tokenize.py [--binary .build/debug/chatter-parity] [--count 20000] [--multilingual]

Draws seeded random strings (whole-Unicode code points, whitespace and punctuation runs, vocabulary
characters, added-token look-alikes) plus the committed fixture's texts, writes them as JSON Lines,
runs `chatter-parity tokenize` with and without `--normalize`, and compares every line with
`EnTokenizer.encode(text)` / `EnTokenizer.encode(punc_norm(text))` (HF tokenizers). Exit status 1 on
any difference.

`--multilingual`: the same against `MTLTokenizer.encode(text, language_id)` / `mtl_tts.punc_norm` over
`grapheme_mtl_merged_expanded_v1.json` and the synthetic Cangjie table of the fixture (copied into a
model directory as `Cangjie5_TC.json`), each string with a seeded language among the 23 (or none), the
random strings richer in Hangul, CJK, Greek capitals (Final_Sigma) and combining marks. Upstream runs
without dicta_onnx and russian_text_stresser, as the fixture does, and with pykakasi 2.3.0
(the reference environment's pin) when it is installed: then `ja` is among the languages, the Japanese
fixture's texts are added, and `chatter-parity` reads the dictionaries `tools/kakasi/fetch-dictionaries.sh`
put in `.cache/kakasi/pykakasi-2.3.0` (texts on which pykakasi itself raises are counted, not compared).
Chinese is compared both ways: by default without spacy-pkuseg (its import blocked upstream; chatter-parity
runs where it finds no pkuseg model), and with `--pkuseg` with it: upstream's `pkuseg()` loads the small
model trained by tools/pkuseg/train_test_model.py (Tests/Assets/pkuseg/synthetic) in place of
`spacy_ontonotes`, with the installed wheel's `default.pkl`, and chatter-parity gets the same three files
through CHATTERSTREAM_PKUSEG_MODEL, and the Chinese share of the strings is raised. `--pkuseg-model DIR` compares with another spacy-pkuseg model folder
(features.msgpack, weights.npz), e.g. the real `spacy_ontonotes` where it can be had.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOKENIZER = os.path.join(ROOT, "Tests", "Fixtures", "tokenizers", "chatterbox-en", "tokenizer.json")
FIXTURE = os.path.join(ROOT, "Tests", "Fixtures", "tokenizers", "chatterbox_en.jsonl")
MTL_TOKENIZER = os.path.join(ROOT, "Tests", "Assets", "tokenizers", "chatterbox-multilingual", "grapheme_mtl_merged_expanded_v1.json")
MTL_FIXTURE = os.path.join(ROOT, "Tests", "Fixtures", "tokenizers", "chatterbox_multilingual.jsonl")
CANGJIE_TABLE = os.path.join(ROOT, "Tests", "Fixtures", "tokenizers", "cangjie_synthetic.json")
JA_FIXTURE = os.path.join(ROOT, "Tests", "Fixtures", "tokenizers", "chatterbox_multilingual_ja.jsonl")
KAKASI_DICTIONARIES = os.path.join(ROOT, ".cache", "kakasi", "pykakasi-2.3.0")
MTL_LANGUAGES = ["ar", "da", "de", "el", "en", "es", "fi", "fr", "he", "hi", "it", "ko", "ms", "nl", "no", "pl",
                 "pt", "ru", "sv", "sw", "tr", "zh", None]


def random_texts(count, vocab, seed=1234, extra=()):
    rng = random.Random(seed)
    vocab_chars = [t for t in sorted(vocab, key=vocab.get) if not t.startswith("[")] + list(extra)
    pieces = ["[SPACE]", "[UH]", "[laughter]", "[START]", "[", "]", "...", "…", " - ", ";", ":", " ,",
              "“", "”", "‘", "’", "—", "–", "\u00a0", "\t", "\n", "\x1c", "\u3000", "\u0301", " ", "  "]
    texts = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(0, 40)):
            r = rng.random()
            if r < 0.35:
                parts.append(rng.choice(vocab_chars))
            elif r < 0.55:
                parts.append(rng.choice(pieces))
            elif r < 0.75:
                parts.append(chr(rng.randint(0x20, 0x7E)))
            elif r < 0.9:
                cp = rng.randint(0x80, 0x2FFF)
            else:
                cp = rng.randint(0x3000, 0x10FFFF)
            if r >= 0.75:
                parts.append(chr(cp if not 0xD800 <= cp <= 0xDFFF else 0xFFFD))
        texts.append("".join(parts))
    return texts


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "debug", "chatter-parity"))
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--multilingual", action="store_true")
    parser.add_argument("--pkuseg", action="store_true", help="--multilingual with spacy-pkuseg's segmentation (the small test model)")
    parser.add_argument("--pkuseg-model", default=None, help="with --pkuseg: a spacy-pkuseg model folder instead of the test model")
    args = parser.parse_args()
    if args.multilingual:
        return compare_multilingual(args)

    from chatterbox.models.tokenizers.tokenizer import EnTokenizer
    from chatterbox.tts import punc_norm

    tok = EnTokenizer(TOKENIZER)
    env = dict(os.environ)
    texts = [json.loads(line)["text"] for line in open(FIXTURE).read().splitlines()[1:]]
    texts += random_texts(args.count, tok.tokenizer.get_vocab())
    failures = 0
    shown = 0
    with tempfile.TemporaryDirectory() as work:
        src = os.path.join(work, "in.jsonl")
        with open(src, "w") as f:
            for text in texts:
                f.write(json.dumps({"text": text, "lang": "en"}) + "\n")
        for normalize in (False, True):
            dst = os.path.join(work, f"out-{normalize}.jsonl")
            cmd = [args.binary, "tokenize", "--tokenizer", TOKENIZER, "--input", src, "--output", dst]
            subprocess.run(cmd + (["--normalize"] if normalize else []), check=True, env=env)
            got = [json.loads(line)["ids"] for line in open(dst).read().splitlines()]
            assert len(got) == len(texts), (len(got), len(texts))
            matched = 0
            for text, ids in zip(texts, got):
                expected = tok.encode(punc_norm(text) if normalize else text)
                if ids == expected:
                    matched += 1
                elif shown < 10:
                    shown += 1
                    print(f"MISMATCH normalize={normalize} text={text!r}\n  got      {ids}\n  expected {expected}")
            print(f"tokenize{' --normalize' if normalize else ''}: {matched}/{len(texts)} lines match upstream")
            failures += len(texts) - matched
    return 1 if failures else 0


def compare_multilingual(args):
    import importlib.util
    import shutil

    sys.path.insert(0, os.path.join(ROOT, "tools", "fixtures"))
    from fixturegen.tokenizers_pkuseg import MODEL as PKUSEG_TEST_MODEL, upstream_pkuseg_home, without_pkuseg

    import chatterbox.models.tokenizers.tokenizer as upstream
    from chatterbox.mtl_tts import punc_norm

    for package in ("dicta_onnx", "russian_text_stresser"):
        assert importlib.util.find_spec(package) is None, f"{package} is installed: this compares with upstream without it"
    upstream.hf_hub_download = lambda repo_id, filename, cache_dir=None: CANGJIE_TABLE
    pkuseg_model = args.pkuseg_model or PKUSEG_TEST_MODEL
    with (upstream_pkuseg_home(pkuseg_model) if args.pkuseg else without_pkuseg()):
        tok = upstream.MTLTokenizer(MTL_TOKENIZER)
    assert (tok.cangjie_converter.segmenter is not None) == args.pkuseg
    rng = random.Random(20261207)
    extra = ([chr(rng.randint(0xAC00, 0xD7AF)) for _ in range(200)] + list(tok.cangjie_converter.word2cj)
             + list("ΑΒΓΔΣΩΆΈΣΣσςİIıẞßKÅǅﬁ½①ｆ") + ["\u0301", "\u0323", "\u0345", "\u0307", "\u3000", "\uf900", "\u2f00"])
    texts = [json.loads(line)["text"] for line in open(MTL_FIXTURE).read().splitlines()[1:]]
    choices = list(MTL_LANGUAGES)
    if args.pkuseg:
        import srsly
        extra += srsly.read_msgpack(os.path.join(pkuseg_model, "features.msgpack"))["unigram"][:2000]
        choices += ["zh"] * 6  # a third of the strings Chinese
    texts += random_texts(args.count, tok.tokenizer.get_vocab(), seed=4321, extra=extra)
    env = dict(os.environ)
    env.pop("CHATTERSTREAM_PKUSEG_MODEL", None)
    if importlib.util.find_spec("pykakasi") is not None:
        assert os.path.isdir(KAKASI_DICTIONARIES), "run tools/kakasi/fetch-dictionaries.sh first"
        env["CHATTERSTREAM_KAKASI_DICTIONARIES"] = KAKASI_DICTIONARIES
        choices.append("ja")
        japanese = [json.loads(line)["text"] for line in open(JA_FIXTURE).read().splitlines()[1:]]
    else:
        japanese = []
    languages = [rng.choice(choices) for _ in texts] + ["ja"] * len(japanese)
    texts += japanese
    failures = shown = raised = 0
    with tempfile.TemporaryDirectory() as work:
        model = os.path.join(work, "model")
        os.mkdir(model)
        shutil.copy(MTL_TOKENIZER, model)
        shutil.copy(CANGJIE_TABLE, os.path.join(model, "Cangjie5_TC.json"))
        if args.pkuseg:
            # The model upstream loaded, and the wheel's default.pkl it post-processes with.
            import spacy_pkuseg
            segmentation = os.path.join(work, "pkuseg")
            os.mkdir(segmentation)
            for name in ("features.msgpack", "weights.npz"):
                shutil.copy(os.path.join(pkuseg_model, name), segmentation)
            shutil.copy(os.path.join(os.path.dirname(spacy_pkuseg.__file__), "dicts", "default.pkl"), segmentation)
            env["CHATTERSTREAM_PKUSEG_MODEL"] = segmentation
        src = os.path.join(work, "in.jsonl")
        with open(src, "w") as f:
            for text, lang in zip(texts, languages):
                f.write(json.dumps({"text": text, "lang": lang}) + "\n")
        for normalize in (False, True):
            dst = os.path.join(work, f"out-{normalize}.jsonl")
            cmd = [args.binary, "tokenize", "--tokenizer", model, "--input", src, "--output", dst]
            # Run in the scratch folder: no .cache/pkuseg there, so without --pkuseg chatter-parity finds no model.
            subprocess.run(cmd + (["--normalize"] if normalize else []), check=True, env=env, cwd=work)
            got = [json.loads(line)["ids"] for line in open(dst).read().splitlines()]
            assert len(got) == len(texts), (len(got), len(texts))
            matched = 0
            compared = 0
            for text, lang, ids in zip(texts, languages, got):
                try:
                    expected = tok.encode(punc_norm(text) if normalize else text, language_id=lang)
                except IndexError:  # pykakasi 2.3.0 raises on some variation selectors; upstream's tokenizer fails there
                    raised += 1
                    continue
                compared += 1
                if ids == expected:
                    matched += 1
                elif shown < 10:
                    shown += 1
                    print(f"MISMATCH normalize={normalize} lang={lang} text={text!r}\n  got      {ids}\n  expected {expected}")
            print(f"tokenize --multilingual{' --pkuseg' if args.pkuseg else ''}{' --normalize' if normalize else ''}: "
                  f"{matched}/{compared} lines match upstream "
                  f"({len(set(languages))} language settings, {languages.count('zh')} Chinese, {languages.count('ja')} Japanese; "
                  f"{len(texts) - compared} where upstream raises)")
            failures += compared - matched
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
