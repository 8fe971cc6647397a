#!/usr/bin/env python3
"""Upstream end-to-end synthesis time, for `chatter-bench stream` (which spawns this with the
reference venv). Prints one JSON document on stdout.

    tts_upstream.py --checkpoint DIR --family chatterbox --text "..." --max-tokens 100 --threads 2 --seed 1

Runs `ChatterboxTTS.from_local(DIR).generate(text)` (or `ChatterboxTurboTTS` for chatterbox-turbo, and
`ChatterboxTurboTTS.from_local(DIR, nano=True)` for chatterbox-nano, with upstream's 5de7a54 source:
upstream_configs.use_upstream_head)
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
    args = p.parse_args()
    nano = args.family == "chatterbox-nano"
    turbo = args.family in ("chatterbox-turbo", "chatterbox-nano")  # one class, one procedure
    if nano:
        use_upstream_head()
    import torch

    out, sys.stdout = sys.stdout, sys.stderr  # upstream prints progress on stdout
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    t0 = time.perf_counter()
    if turbo:
        from chatterbox.tts_turbo import ChatterboxTurboTTS
        model = ChatterboxTurboTTS.from_local(args.checkpoint, "cpu", **({"nano": True} if nano else {}))
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
        wav = model.generate(args.text)
    seconds = time.perf_counter() - t0
    audio = wav.shape[-1] / model.sr
    json.dump({"load_s": load_s, "seconds": seconds, "audio_s": audio, "rtf": seconds / audio,
               "first_audio_s": seconds, "torch": torch.__version__, "threads": args.threads}, out)
    out.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
