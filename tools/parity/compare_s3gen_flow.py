#!/usr/bin/env python3
"""Compares chatter-parity's S3Gen flow stages with upstream chatterbox-tts 0.1.7, through files.

    swift build -c release --product chatter-parity
    tools/fixtures/.venv/bin/python tools/parity/compare_s3gen_flow.py [--binary …] [--model s3gen.safetensors]

Without --model it builds the reduced-width upstream flow of the s3gen/flow fixtures (seeded random
weights, standard and meanflow), writes its state dict as a `flow.*` safetensors file and passes
that as --model (decoder_heads=2). With --model (a real or random full-size s3gen*.safetensors)
it loads the upstream flow from that file instead. Prints max|err| / max|ref| per stage; exit 1
if any exceeds 1e-4.
"""
import argparse
import contextlib
import os
import subprocess
import sys
import tempfile

import torch
from safetensors.torch import load_file, save_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools", "fixtures"))

from fixturegen import FixtureFile  # noqa: E402
from fixturegen.s3gen_flow import DEC_HEADS, build_flow, injected_noise  # noqa: E402


def run_stage(binary, stage, tensors, params, workdir, model):
    src = os.path.join(workdir, f"{stage}-in.safetensors")
    dst = os.path.join(workdir, f"{stage}-out.safetensors")
    save_file({k: v.contiguous() for k, v in tensors.items()}, src, metadata={k: str(v) for k, v in params.items()})
    subprocess.run([binary, stage, "--input", src, "--output", dst, "--model", model], check=True, stderr=subprocess.DEVNULL)
    return load_file(dst)


def relative_error(ours, ref):
    ref = ref.double()
    return ((ours.double() - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()


def full_flow(path, meanflow):
    from chatterbox.models.s3gen.s3gen import S3Token2Mel
    model = S3Token2Mel(meanflow=meanflow)
    state = {k[5:]: v for k, v in load_file(path).items() if k.startswith("flow.")}
    model.flow.load_state_dict(state, strict=True)
    return model.flow.eval()


def check(binary, flow, model_path, heads, meanflow, vocab, workdir, label):
    g = torch.Generator().manual_seed(1)
    P, T = 6, 9
    steps = 2 if meanflow else 10
    params = dict(decoder_heads=heads, meanflow=str(meanflow).lower())
    prompt_token = torch.randint(0, vocab, (1, P), generator=g)
    token = torch.randint(0, vocab, (1, T), generator=g)
    prompt_feat = torch.randn(1, 2 * P, 80, generator=g) - 5
    embedding = torch.randn(1, 192, generator=g)
    results = []
    with torch.inference_mode():
        tokens = torch.cat([prompt_token, token], 1)
        h, _ = flow.encoder(flow.input_embedding(tokens), torch.tensor([P + T]))
        mu = flow.encoder_proj(h).transpose(1, 2)
        out = run_stage(binary, "s3gen-encoder", {"tokens": tokens}, params, workdir, model_path)
        results.append((f"{label} s3gen-encoder h", relative_error(out["h"], h[0])))
        results.append((f"{label} s3gen-encoder mu", relative_error(out["mu"], mu[0])))

        ref = dict(prompt_token=prompt_token, token=token, prompt_feat=prompt_feat, embedding=embedding)
        out = run_stage(binary, "s3gen-mu", ref, params, workdir, model_path)
        spks = flow.spk_embed_affine_layer(torch.nn.functional.normalize(embedding, dim=1))
        cond = torch.zeros(1, 80, 2 * (P + T))
        cond[:, :, :2 * P] = prompt_feat.transpose(1, 2)
        results.append((f"{label} s3gen-mu mu", relative_error(out["mu"], mu[0])))
        results.append((f"{label} s3gen-mu spks", relative_error(out["spks"], spks[0])))
        results.append((f"{label} s3gen-mu cond", relative_error(out["cond"], cond[0])))

        N = 2 * (P + T)
        x = torch.randn(1, 80, N, generator=g).repeat(2, 1, 1)
        batch = dict(x=x, mu=torch.cat([mu, torch.zeros_like(mu)]), spks=torch.cat([spks, torch.zeros_like(spks)]),
                     cond=torch.cat([cond, torch.zeros_like(cond)]))
        t, r = 0.25, 0.75
        out = run_stage(binary, "s3gen-cfm-step", batch, dict(params, t=t, r=r), workdir, model_path)
        v = flow.decoder.estimator(batch["x"], torch.ones(2, 1, N), batch["mu"], torch.tensor([t, t]), batch["spks"],
                                   batch["cond"], r=torch.tensor([r, r]) if meanflow else None)
        results.append((f"{label} s3gen-cfm-step", relative_error(out["velocity"], v)))

        z = torch.randn(1, 80, N, generator=g)
        with injected_noise(z), contextlib.redirect_stdout(open(os.devnull, "w")), \
                contextlib.redirect_stderr(open(os.devnull, "w")):
            mel, _ = flow.inference(token=token, token_len=torch.tensor([T]), prompt_token=prompt_token,
                                    prompt_token_len=torch.tensor([P]), prompt_feat=prompt_feat, prompt_feat_len=None,
                                    embedding=embedding, finalize=True, n_timesteps=steps, meanflow=meanflow)
        out = run_stage(binary, "s3gen-mel", dict(ref, noise=z), dict(params, steps=steps), workdir, model_path)
        results.append((f"{label} s3gen-mel ({steps} steps)", relative_error(out["mel"], mel[0])))
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "chatter-parity"))
    parser.add_argument("--model", help="s3gen.safetensors or s3gen_meanflow.safetensors (full size)")
    parser.add_argument("--meanflow", action="store_true", help="the --model file is a meanflow flow")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        if args.model:
            flow = full_flow(args.model, args.meanflow)
            results += check(args.binary, flow, args.model, 8, args.meanflow, 6561, workdir, "full")
        else:
            for meanflow in (False, True):
                f = FixtureFile("compare", 1234 + meanflow)
                flow = build_flow(f, blocks=2, dec_blocks=2, mid_blocks=2, meanflow=meanflow)
                path = os.path.join(workdir, f"flow-{meanflow}.safetensors")
                save_file({f"flow.{k}": v.contiguous() for k, v in flow.state_dict().items()}, path)
                results += check(args.binary, flow, path, DEC_HEADS, meanflow, flow.vocab_size, workdir,
                                 "meanflow" if meanflow else "standard")
    failures = 0
    for name, error in results:
        ok = error <= 1e-4
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name:40s} {error:.3e}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
