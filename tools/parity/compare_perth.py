#!/usr/bin/env python3
"""Compares chatter-parity's perth-apply / perth-detect stages with resemble-perth 1.0.1 on any mono
wav (default: the s3tokenizer wheel's BAC009S0764W0121.wav), through files.

    swift build -c release --product chatter-parity
    tools/perth/fetch-checkpoint.sh
    tools/fixtures/.venv/bin/python tools/parity/compare_perth.py [--wav FILE] [--binary ...]

The wav is loaded like Chatterbox's output would be (librosa, soxr HQ to 24 kHz, float32), then:
perth-apply vs `apply_watermark` (max|err| / max|ref|, tolerance 1e-4), and perth-detect vs
`get_watermark(round=False)` on upstream-watermarked, our watermarked, and clean audio (|Δ| ≤ 1e-5
where upstream's input is the same; ours ≥ 0.99 watermarked, ≤ 0.01 clean). Exit status 1 on failure.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from safetensors.torch import load_file, save_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CHECKPOINT = os.path.join(ROOT, ".cache", "perth", "perth_net_250000.pth.tar")


def run_stage(binary, stage, wav, params, workdir):
    src, dst = os.path.join(workdir, f"{stage}-in.safetensors"), os.path.join(workdir, f"{stage}-out.safetensors")
    save_file({"wav": torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))}, src,
              metadata={k: str(v) for k, v in params.items()})
    subprocess.run([binary, stage, "--model", CHECKPOINT, "--input", src, "--output", dst], check=True,
                   stderr=subprocess.DEVNULL)
    return load_file(dst)


def main():
    import librosa
    import perth
    import s3tokenizer
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "chatter-parity"))
    parser.add_argument("--wav", default=os.path.join(os.path.dirname(s3tokenizer.__file__), "assets", "BAC009S0764W0121.wav"))
    args = parser.parse_args()
    wav, _ = librosa.load(args.wav, sr=24000)
    wm = perth.PerthImplicitWatermarker()
    upstream = wm.apply_watermark(wav, sample_rate=24000)
    failures = 0
    with tempfile.TemporaryDirectory() as workdir:
        ours = run_stage(args.binary, "perth-apply", wav, {"sample_rate": 24000}, workdir)["wav"].numpy()
        rel = float(np.abs(ours - upstream).max() / np.abs(upstream).max()) if ours.shape == upstream.shape else float("inf")
        ok = rel <= 1e-4
        failures += not ok
        print(f"perth-apply {len(wav)} → {len(ours)} samples (upstream {len(upstream)}): relative {rel:.3e} {'ok' if ok else 'FAIL'}")
        for label, x, want in [("upstream-watermarked", upstream, 0.99), ("ours-watermarked", ours, 0.99), ("clean", wav, None)]:
            score = run_stage(args.binary, "perth-detect", x, {"sample_rate": 24000, "round": "false"}, workdir)["score"].item()
            ref = float(wm.get_watermark(x, sample_rate=24000, round=False))
            ok = abs(score - ref) <= 1e-5 and (score >= want if want else score <= 0.01)
            failures += not ok
            print(f"perth-detect {label}: ours {score:.7f}, upstream {ref:.7f} {'ok' if ok else 'FAIL'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
