#!/usr/bin/env python3
"""Upstream end-to-end synthesis time, for `chatter-bench stream` (which spawns this with the
reference venv). Prints one JSON document on stdout.

    tts_upstream.py --checkpoint DIR --family chatterbox --text "..." --max-tokens 100 --threads 2 --seed 1 [--language fr]

Runs `ChatterboxTTS.from_local(DIR).generate(text)` (or `ChatterboxTurboTTS` for chatterbox-turbo, and
`ChatterboxTurboTTS.from_local(DIR, nano=True)` for chatterbox-nano, with upstream's 5de7a54 source:
upstream_configs.use_upstream_head; `ChatterboxMultilingualTTS.from_local(DIR).generate(text, language_id)`
for chatterbox-multilingual-v2 with the pinned 0.1.7 wheel, and with `t3_model="v3"` and upstream's
5de7a54 source for chatterbox-multilingual, V3; the hub is not asked for `Cangjie5_TC.json`: offline,
upstream logs that it is missing and passes Chinese through, as our engine does without it)
on the CPU with the built-in voice, watermark included, as a user would; upstream has no streaming,
so its first audio arrives with the whole utterance. With random weights T3 rarely samples EOS, so
T3's `max_new_tokens` is capped at --max-tokens (upstream hard-codes 1000 in `generate`) to give both
engines the same amount of speech.
"""
import argparse
import json
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from upstream_configs import use_upstream_head  # noqa: E402

warnings.filterwarnings("ignore")



def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--family", default="chatterbox")
    p.add_argument("--text", required=True)
    p.add_argument("--max-tokens", type=int, required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--language", default=None)
    args = p.parse_args()
    nano = args.family == "chatterbox-nano"
    turbo = args.family in ("chatterbox-turbo", "chatterbox-nano")  # one class, one procedure
    multilingual = args.family.startswith("chatterbox-multilingual")
    v3 = args.family == "chatterbox-multilingual"
    if nano or v3:
        use_upstream_head()
    if multilingual:
        os.environ["HF_HUB_OFFLINE"] = "1"  # the Cangjie table is not fetched: fail fast, as without network
        # spacy-pkuseg (in the reference venv for the tokenizer parity) downloads its model from github.com
        # on first use and upstream crashes when it cannot; without that model, time upstream as installed
        # without spacy-pkuseg (it logs and leaves Chinese unsegmented), which is what our engine does.
        if not os.path.isdir(os.path.join(os.path.expanduser("~"), ".pkuseg", "spacy_ontonotes")):
            sys.modules["spacy_pkuseg"] = None
    import torch

    out, sys.stdout = sys.stdout, sys.stderr  # upstream prints progress on stdout
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    t0 = time.perf_counter()
    if turbo:
        from chatterbox.tts_turbo import ChatterboxTurboTTS
        model = ChatterboxTurboTTS.from_local(args.checkpoint, "cpu", **({"nano": True} if nano else {}))
    elif multilingual:
        import chatterbox.mtl_tts as mtl_tts
        from chatterbox.mtl_tts import ChatterboxMultilingualTTS

        # mtl_tts drops start/stop tokens but, unlike tts.py, not the other ids >= 6561 that T3's
        # 8194-entry head can sample; real weights never do, random ones do, and S3Gen's embedding
        # then raises. Filter as tts.py (and our engine) does.
        drop = mtl_tts.drop_invalid_tokens
        mtl_tts.drop_invalid_tokens = lambda tokens: (lambda kept: kept[kept < 6561])(drop(tokens))
        model = ChatterboxMultilingualTTS.from_local(args.checkpoint, "cpu", **({"t3_model": "v3"} if v3 else {}))
    else:
        from chatterbox.tts import ChatterboxTTS
        model = ChatterboxTTS.from_local(args.checkpoint, "cpu")
    load_s = time.perf_counter() - t0

    inference = model.t3.inference_turbo if turbo else model.t3.inference
    def capped(*a, **k):
        k["max_gen_len" if turbo else "max_new_tokens"] = args.max_tokens
        return inference(*a, **k)
    if turbo:
        model.t3.inference_turbo = capped
    else:
        model.t3.inference = capped

    t0 = time.perf_counter()
    with torch.inference_mode():
        wav = model.generate(args.text, language_id=args.language) if multilingual else model.generate(args.text)
    seconds = time.perf_counter() - t0
    audio = wav.shape[-1] / model.sr
    json.dump({"load_s": load_s, "seconds": seconds, "audio_s": audio, "rtf": seconds / audio,
               "first_audio_s": seconds, "torch": torch.__version__, "threads": args.threads}, out)
    out.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
