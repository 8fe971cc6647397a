#!/usr/bin/env python3
"""Compares chatter-parity's `s3tokenizer` stage with upstream (Chatterbox's `S3Tokenizer` wrapper around
s3tokenizer's `S3TokenizerV2`) on a full-size checkpoint, through files.

    swift build --product chatter-parity
    tools/fixtures/.venv/bin/python tools/parity/compare_s3tokenizer.py --model PATH/s3gen.safetensors \
        [--binary .build/debug/chatter-parity] [--long]

Upstream: `S3TokenizerV2` (full config) loaded from the `tokenizer.*` keys; the log-mel is the wrapper's
`log_mel_spectrogram` (the file's `_mel_filters` when present, else librosa's), then `forward`'s
`max_len` cut and `quantize`. Cases: both wheel utterances whole, one with max_len 50, and with --long
the first tiled to 36 s (two 30 s windows). Reports tokens identical / total per case, mel and hidden
max|err|, and for differing tokens the FSQ margin of upstream's decision (|tanh(z)·0.999| − 0.5 nearest
to 0), which tells rounding-boundary flips from real bugs. Exit status 1 when a case has a token
differing at a position whose margin exceeds 1e-3, or mel > 5e-5 / hidden > 1e-3 relative.
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


def main():
    import librosa
    import s3tokenizer
    from chatterbox.models.s3tokenizer.s3tokenizer import S3Tokenizer
    from s3tokenizer.model_v2 import ModelConfig, S3TokenizerV2
    from s3tokenizer.utils import padding

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "chatter-parity"))
    parser.add_argument("--long", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)

    weights = {k[len("tokenizer."):]: v.float() for k, v in load_file(args.model).items() if k.startswith("tokenizer.")}
    model = S3TokenizerV2("speech_tokenizer_v2_25hz", ModelConfig()).eval()
    model.load_state_dict({k: v for k, v in weights.items() if k not in ("_mel_filters", "window")}, strict=True)

    class MelSelf:
        device = torch.device("cpu")
        n_fft = 400
        window = torch.hann_window(400)
        _mel_filters = weights.get("_mel_filters", torch.FloatTensor(librosa.filters.mel(sr=16000, n_fft=400, n_mels=128)))

    assets = os.path.join(os.path.dirname(s3tokenizer.__file__), "assets")
    w1, _ = librosa.load(os.path.join(assets, "BAC009S0764W0121.wav"), sr=None)
    w2, _ = librosa.load(os.path.join(assets, "BAC009S0764W0122.wav"), sr=None)
    cases = [("0121", w1, None), ("0122", w2, None), ("0122-maxlen50", w2, 50)]
    if args.long:
        cases.append(("0121-tiled-36s", np.tile(w1, 9)[:36 * 16000], None))

    failures = 0
    with tempfile.TemporaryDirectory() as workdir:
        for label, wav, max_len in cases:
            wav = np.ascontiguousarray(wav, dtype=np.float32)
            with torch.no_grad():
                mel = S3Tokenizer.log_mel_spectrogram(MelSelf, torch.from_numpy(wav)[None])
                if max_len is not None:
                    mel = mel[..., :max_len * 4]
                mels, lens = padding([mel.squeeze(0)])
                tokens, tlen = model.quantize(mels, lens)
                tokens = tokens[0, :tlen[0]].numpy()
                hidden = margins = None
                if mels.shape[-1] <= 3000:
                    hidden, _ = model.encoder(mels, lens)
                    z = model.quantizer._codebook.project_down(hidden[0]).tanh() * 0.9990000128746033
                    margins = (z.abs() - 0.5).abs().min(dim=-1).values.numpy()
            src, dst = os.path.join(workdir, "in.safetensors"), os.path.join(workdir, "out.safetensors")
            save_file({"wav": torch.from_numpy(wav)}, src, metadata={} if max_len is None else {"max_len": str(max_len)})
            subprocess.run([args.binary, "s3tokenizer", "--model", args.model, "--input", src, "--output", dst], check=True)
            ours = load_file(dst)
            ours_tokens = ours["tokens"].numpy()
            mel_err = float((ours["mel"] - mel[0]).abs().max()) if ours["mel"].shape == mel[0].shape else float("inf")
            same = int((ours_tokens == tokens).sum()) if ours_tokens.shape == tokens.shape else 0
            line = f"{label}: tokens identical {same}/{len(tokens)} (ours {len(ours_tokens)}), mel max|err| {mel_err:.2e}"
            bad = mel_err > 5e-5 or ours_tokens.shape != tokens.shape
            if hidden is not None:
                rel = float((ours["hidden"] - hidden[0]).abs().max() / hidden[0].abs().max())
                line += f", hidden relative {rel:.2e}"
                bad |= rel > 1e-3
                diff = np.nonzero(ours_tokens != tokens)[0] if ours_tokens.shape == tokens.shape else []
                if len(diff):
                    line += f", differing at {list(diff[:10])} with upstream margins {[f'{margins[i]:.1e}' for i in diff[:10]]}"
                    bad |= bool((margins[diff] > 1e-3).any())
            elif same != len(tokens):
                bad = True
            failures += bad
            print(line + (" FAIL" if bad else " ok"), flush=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
