#!/usr/bin/env python3
"""Upstream PyTorch timings of S3Gen's three parts, for `chatter-bench s3gen` (which spawns this with
the reference venv, e.g. tools/fixtures/.venv/bin/python). Prints one JSON document on stdout.

    s3gen_upstream.py --weights s3gen.safetensors --inputs inputs.safetensors --threads 2 [--meanflow]

`inputs` (written by chatter-bench): prompt_token (1, P) int64, prompt_feat (1, 2P, 80), embedding
(1, 192), token (1, T) int64, noise (1, 80, 2(P+T)). Parts, as S3Token2Wav.inference runs them:
- encoder: flow.inference up to the decoder (x-vector affine, embedding, encoder, encoder_proj, cond);
- cfm: flow.decoder (CausalConditionalCFM) with n_timesteps 10 (CFG) or 2 (meanflow), z = noise;
- hift: mel2wav.inference on the flow's mel (no cache), then trim_fade.
"""
import argparse
import json
import sys
import time
import warnings

warnings.filterwarnings("ignore")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from safetensors.torch import load_file  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--weights", required=True)
    p.add_argument("--inputs", required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--repetitions", type=int, default=1)
    p.add_argument("--meanflow", action="store_true")
    args = p.parse_args()
    # Upstream prints progress to stdout on some paths; only the JSON document goes there.
    out, sys.stdout = sys.stdout, sys.stderr

    torch.set_num_threads(args.threads)
    from chatterbox.models.s3gen import S3Gen
    from chatterbox.models.s3gen.utils.mask import make_pad_mask

    t0 = time.perf_counter()
    model = S3Gen(meanflow=args.meanflow).eval()
    state = load_file(args.weights)
    missing, unexpected = model.load_state_dict(state, strict=False)
    relevant_missing = [k for k in missing if k.startswith(("flow.", "mel2wav."))]
    if relevant_missing:
        print(f"missing flow/mel2wav weights: {relevant_missing[:5]}", file=sys.stderr)
        return 1
    load_s = time.perf_counter() - t0
    inputs = load_file(args.inputs)
    prompt_token, prompt_feat = inputs["prompt_token"].long(), inputs["prompt_feat"].float()
    embedding, token, noise = inputs["embedding"].float(), inputs["token"].long(), inputs["noise"].float()
    flow = model.flow
    steps = 2 if args.meanflow else 10

    def encoder_part():
        e = flow.spk_embed_affine_layer(F.normalize(torch.atleast_2d(embedding), dim=1))
        tokens = torch.cat([prompt_token, token], dim=1)
        lengths = torch.tensor([tokens.shape[1]])
        mask = (~make_pad_mask(lengths)).unsqueeze(-1).to(e)
        x = flow.input_embedding(tokens) * mask
        h, h_masks = flow.encoder(x, lengths)
        h = flow.encoder_proj(h)
        n = h.shape[1]
        conds = torch.zeros([1, n, 80])
        conds[:, :prompt_feat.shape[1]] = prompt_feat
        m = (~make_pad_mask(h_masks.sum(dim=-1).squeeze(dim=-1))).unsqueeze(1).to(h)
        return h.transpose(1, 2).contiguous(), m, e, conds.transpose(1, 2)

    def cfm_part(mu, mask, spks, cond):
        original = torch.randn_like
        torch.randn_like = lambda like, *a, **k: noise.clone()
        try:
            feat, _ = flow.decoder(mu=mu, mask=mask, spks=spks, cond=cond, n_timesteps=steps, meanflow=args.meanflow)
        finally:
            torch.randn_like = original
        return feat[:, :, prompt_feat.shape[1]:]

    def hift_part(mel):
        wave, _ = model.mel2wav.inference(speech_feat=mel, cache_source=torch.zeros(1, 1, 0))
        wave[:, :len(model.trim_fade)] *= model.trim_fade
        return wave

    def timed(fn, *a):
        start = time.perf_counter()
        out = fn(*a)
        return out, time.perf_counter() - start

    times = {"encoder": [], "cfm": [], "hift": []}
    with torch.inference_mode():
        # Warm-up (allocator, oneDNN/MKL first-call costs): encoder and HiFT in full, the CFM at 1 step.
        enc = encoder_part()
        torch.randn_like, saved = (lambda like, *a, **k: noise.clone()), torch.randn_like
        try:
            flow.decoder(mu=enc[0], mask=enc[1], spks=enc[2], cond=enc[3], n_timesteps=1, meanflow=args.meanflow)
        finally:
            torch.randn_like = saved
        for _ in range(args.repetitions):
            enc, t = timed(encoder_part)
            times["encoder"].append(t)
            mel, t = timed(cfm_part, *enc)
            times["cfm"].append(t)
            wave, t = timed(hift_part, mel)
            times["hift"].append(t)

    def median(v):
        v = sorted(v)
        return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2

    json.dump({
        "torch": torch.__version__, "threads": torch.get_num_threads(), "meanflow": args.meanflow, "steps": steps,
        "load_s": load_s, "repetitions": args.repetitions,
        "seconds": {k: median(v) for k, v in times.items()},
        "mel_frames": mel.shape[2], "samples": wave.shape[1],
        "wave_rms": float(wave.pow(2).mean().sqrt()), "mel_mean": float(mel.mean()),
        "config": torch.__config__.show().splitlines()[:3],
    }, out)
    out.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
