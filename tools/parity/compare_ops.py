#!/usr/bin/env python3
"""Compares chatter-parity's op stages with torch, end to end through files — the way anyone can
check the engine stage by stage without writing Swift.

    swift build -c release --product chatter-parity
    tools/fixtures/.venv/bin/python tools/parity/compare_ops.py [--binary .build/release/chatter-parity]

For each stage it draws inputs, writes them (with parameters in __metadata__), runs
`chatter-parity <stage> --input in.safetensors --output out.safetensors`, computes the same thing
with torch, and prints max|err| / max|ref|. Exit status 1 if any stage exceeds its tolerance.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def run_stage(binary, stage, tensors, params, workdir, model=None):
    src = os.path.join(workdir, f"{stage}-in.safetensors")
    dst = os.path.join(workdir, f"{stage}-out.safetensors")
    save_file({k: v.contiguous() for k, v in tensors.items()}, src, metadata={k: str(v) for k, v in params.items()})
    cmd = [binary, stage, "--input", src, "--output", dst] + (["--model", model] if model else [])
    subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
    return load_file(dst)


def relative_error(ours, ref):
    ref = ref.double()
    return ((ours.double() - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "chatter-parity"))
    args = parser.parse_args()
    g = torch.Generator().manual_seed(0)
    failures = 0
    with tempfile.TemporaryDirectory() as workdir:
        checks = []
        signal = torch.randn(2, 4000, generator=g)
        window = torch.hann_window(400)
        params = dict(n_fft=512, hop_length=160, win_length=400, center="true", pad_mode="reflect")
        ours = run_stage(args.binary, "stft", {"signal": signal, "window": window}, params, workdir)["spectrum"]
        ref = torch.view_as_real(torch.stft(signal, 512, 160, 400, window, center=True, pad_mode="reflect", return_complex=True))
        checks.append(("stft 512/160/400", relative_error(ours, ref), 1e-5))

        spec = torch.stft(signal, 16, 4, window=torch.hann_window(16), return_complex=True)
        ours = run_stage(args.binary, "istft", {"spectrum": torch.view_as_real(spec), "window": torch.hann_window(16)},
                         dict(n_fft=16, hop_length=4), workdir)["signal"]
        ref = torch.istft(spec, 16, 4, window=torch.hann_window(16))
        checks.append(("istft 16/4 (HiFT)", relative_error(ours, ref), 1e-5))

        x, w, b = torch.randn(1, 8, 100, generator=g), torch.randn(6, 4, 5, generator=g), torch.randn(6, generator=g)
        ours = run_stage(args.binary, "conv1d", {"input": x, "weight": w, "bias": b}, dict(stride=2, padding=3, dilation=2, groups=2), workdir)["output"]
        checks.append(("conv1d s2 p3 d2 g2", relative_error(ours, F.conv1d(x, w, b, stride=2, padding=3, dilation=2, groups=2)), 1e-5))

        x, w, b = torch.randn(2, 1024, generator=g), torch.randn(4096, 1024, generator=g), torch.randn(4096, generator=g)
        ours = run_stage(args.binary, "linear", {"input": x, "weight": w.bfloat16(), "bias": b}, {}, workdir)["output"]
        checks.append(("linear M=2 bf16 weights (CFG rows)", relative_error(ours, F.linear(x, w.bfloat16().float(), b)), 1e-5))
        x = torch.randn(50, 256, generator=g)
        ours = run_stage(args.binary, "linear", {"input": x, "weight": w[:512, :256], "bias": b[:512]}, {}, workdir)["output"]
        checks.append(("linear M=50 f32 (sgemm)", relative_error(ours, F.linear(x, w[:512, :256], b[:512])), 1e-5))

        for name, error, tolerance in checks:
            ok = error <= tolerance
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {name}: relative error {error:.3e} (tolerance {tolerance:.0e})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
