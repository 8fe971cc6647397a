#!/usr/bin/env python3
"""Upstream PyTorch timing of ``prepare_conditionals`` (chatterbox-tts 0.1.7, original and Turbo), for
``chatter-bench conditionals`` (which spawns this with the reference venv). Prints one JSON document.

    conditionals_upstream.py --model DIR --reference FILE --threads 2 [--repetitions 3]

DIR holds ve.safetensors and s3gen.safetensors (or s3gen_meanflow.safetensors); upstream's
VoiceEncoder, CAMPPlus and S3Tokenizer load them and ``prepare_conditionals`` runs on a shell holding
only those (tools/fixtures/fixturegen/conditionals.py), so the time is the whole of it: librosa.load
(+ resample), Turbo's loudness normalisation, embed_ref, the T3 prompt tokens and the VoiceEncoder.
One warm-up call per family, then the median of ``repetitions``.
"""
import argparse
import json
import os
import statistics
import sys
import time
import warnings

warnings.filterwarnings("ignore")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "fixtures"))

import torch  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--reference", required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--repetitions", type=int, default=3)
    args = p.parse_args()
    out, sys.stdout = sys.stdout, sys.stderr
    import logging
    logging.disable(logging.WARNING)  # embed_ref's length warning
    torch.set_num_threads(args.threads)
    from chatterbox.tts import ChatterboxTTS
    from chatterbox.tts_turbo import ChatterboxTurboTTS
    from fixturegen.conditionals import upstream_networks, upstream_tts_shell

    t0 = time.perf_counter()
    networks = upstream_networks(args.model)
    load_s = time.perf_counter() - t0
    seconds = {}
    for family, cls, prompt_len in [("chatterbox", ChatterboxTTS, 150), ("chatterbox-turbo", ChatterboxTurboTTS, 375)]:
        tts = upstream_tts_shell(cls, *networks, prompt_len)
        times = []
        with torch.inference_mode():
            for _ in range(args.repetitions + 1):
                start = time.perf_counter()
                cls.prepare_conditionals(tts, args.reference, exaggeration=0.5)
                times.append(time.perf_counter() - start)
        seconds[family] = statistics.median(times[1:])
        print(f"pytorch {family}: {seconds[family]:.3f} s", file=sys.stderr)
    json.dump({"torch": torch.__version__, "threads": args.threads, "load_s": round(load_s, 3),
               "seconds": {k: round(v, 4) for k, v in seconds.items()}}, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
