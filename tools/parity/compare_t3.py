#!/usr/bin/env python3
"""Compares chatter-parity's T3 stages (t3-prefill, t3-decode-logits, t3-sample) with upstream
chatterbox-tts 0.1.7, end to end through files.

    swift build -c release --product chatter-parity
    tools/fixtures/.venv/bin/python tools/parity/compare_t3.py                      # tiny fixture model
    tools/fixtures/.venv/bin/python tools/parity/compare_t3.py --model DIR_OR_FILE  # a t3_cfg.safetensors

Without --model it uses the tiny upstream model stored in Tests/Fixtures/t3/tiny.safetensors
(weights under ``tiny.w.``, 4 heads, speech start/stop 198/199) and its stored references. With
--model it loads the checkpoint into upstream ``T3`` (fp32) and computes the references live, with
random inputs (speaker embedding, 150 prompt tokens, 40 text ids). Sampling replaces
``torch.multinomial`` by inverse-CDF draws from the same uniforms the stage receives.
Exit status 1 if any check exceeds its tolerance.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import torch
from safetensors.torch import load_file, save_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def run_stage(binary, stage, tensors, params, workdir, model):
    src = os.path.join(workdir, f"{stage}-in.safetensors")
    dst = os.path.join(workdir, f"{stage}-out.safetensors")
    save_file({k: v.contiguous() for k, v in tensors.items()}, src, metadata={k: str(v) for k, v in params.items()})
    subprocess.run([binary, stage, "--input", src, "--output", dst, "--model", model], check=True)
    return load_file(dst)


def rel(ours, ref):
    ref = ref.double()
    return ((ours.double() - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()


def upstream_reference(model_path, steps=20):
    """Live references from upstream T3 over a real checkpoint."""
    from safetensors.torch import load_file as load
    from chatterbox.models.t3 import T3
    from chatterbox.models.t3.modules.cond_enc import T3Cond
    from chatterbox.models.t3.inference.t3_hf_backend import T3HuggingfaceBackend

    path = os.path.join(model_path, "t3_cfg.safetensors") if os.path.isdir(model_path) else model_path
    model = T3()
    model.load_state_dict(load(path))
    model.eval()
    hp = model.hp
    g = torch.Generator().manual_seed(1)
    speaker = torch.nn.functional.normalize(torch.randn(1, 256, generator=g), dim=-1)
    prompt = torch.randint(0, 6561, (150,), generator=g)
    text = torch.randint(1, 704, (40,), generator=g)
    forced = torch.randint(0, 6561, (steps,), generator=g)
    uniforms = torch.rand(steps, generator=g, dtype=torch.float64)
    exaggeration, cfg_weight = 0.5, 0.5
    wrapped = torch.cat([torch.tensor([255]), text, torch.tensor([0])])
    text2 = torch.stack([wrapped, wrapped])
    cond_obj = lambda: T3Cond(speaker_emb=speaker, cond_prompt_speech_tokens=prompt[None],
                              emotion_adv=exaggeration * torch.ones(1, 1, 1))
    ref = {}
    with torch.inference_mode():
        ref["cond"] = model.prepare_conditioning(cond_obj())
        embeds, _ = model.prepare_input_embeds(t3_cond=cond_obj(), text_tokens=text2,
                                               speech_tokens=hp.start_speech_token * torch.ones_like(text2[:, :1]),
                                               cfg_weight=cfg_weight)
        bos = model.speech_emb(torch.tensor([[hp.start_speech_token]])) + model.speech_pos_emb.get_fixed_embedding(0)
        prefill = torch.cat([embeds, torch.cat([bos, bos])], dim=1)
        backend = T3HuggingfaceBackend(config=model.cfg, llama=model.tfmr, speech_enc=model.speech_emb,
                                       speech_head=model.speech_head)
        out = backend(inputs_embeds=prefill, past_key_values=None, use_cache=True, output_hidden_states=True, return_dict=True)
        ref["prefill_embeds"], ref["prefill_hidden"], ref["logits"] = prefill, out.hidden_states[-1], out.logits[:, -1]
        rows, past = [], out.past_key_values
        for i in range(steps + 1):
            l = out.logits[:, -1, :]
            rows.append((l[0:1] + cfg_weight * (l[0:1] - l[1:2]))[0])
            if i == steps:
                break
            e = model.speech_emb(forced[i].view(1, 1)) + model.speech_pos_emb.get_fixed_embedding(i + 1)
            out = backend(inputs_embeds=torch.cat([e, e]), past_key_values=past, output_hidden_states=True, return_dict=True)
            past = out.past_key_values
        ref["cfg_logits"] = torch.stack(rows)

        seen, toks, it = [], [], iter(uniforms.tolist())

        def fake_multinomial(p, num_samples=1, **_):
            u = next(it)
            row = p[0].to(torch.float64)
            c = torch.cumsum(row, 0)
            hits = ((c > u * c[-1]) & (row > 0)).nonzero()
            tok = int(hits[0, 0]) if len(hits) else int(row.argmax())
            seen.append(p[0].clone())
            toks.append(tok)
            return torch.tensor([[tok]])

        real = torch.multinomial
        torch.multinomial = fake_multinomial
        try:
            model.inference(t3_cond=cond_obj(), text_tokens=text2, max_new_tokens=steps, temperature=0.8,
                            cfg_weight=cfg_weight, repetition_penalty=1.2, min_p=0.05, top_p=1.0)
        finally:
            torch.multinomial = real
        ref["probs"], ref["tokens"] = torch.stack(seen), torch.tensor(toks)
    inputs = {"speaker_emb": speaker, "prompt_tokens": prompt, "text_tokens": text}
    params = {"exaggeration": exaggeration, "cfg_weight": cfg_weight}
    sample = dict(temperature=0.8, repetition_penalty=1.2, min_p=0.05, top_p=1.0, max_new_tokens=steps)
    return path, inputs, params, forced, uniforms, sample, ref


def fixture_reference():
    path = os.path.join(ROOT, "Tests", "Fixtures", "t3", "tiny.safetensors")
    f = load_file(path)
    t = lambda role, case="tiny": f[f"{case}.{role}"]
    inputs = {"speaker_emb": t("speaker_emb"), "prompt_tokens": t("prompt_tokens"), "text_tokens": t("text_tokens")[1:-1]}
    params = {"exaggeration": 0.7, "cfg_weight": 0.5, "heads": 4, "start_speech": 198, "stop_speech": 199,
              "weight_prefix": "tiny.w."}
    ref = {"cond": t("cond"), "prefill_embeds": t("prefill_embeds"), "prefill_hidden": t("prefill_hidden"),
           "logits": t("prefill_logits"), "cfg_logits": t("cfg_logits"),
           "probs": t("probs", "sample_0"), "tokens": t("tokens", "sample_0")}
    sample = dict(temperature=0.8, repetition_penalty=1.2, min_p=0.05, top_p=1.0, max_new_tokens=50)
    return path, inputs, params, t("forced_tokens"), t("uniforms", "sample_0"), sample, ref


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "chatter-parity"))
    parser.add_argument("--model", help="t3_cfg.safetensors or a directory holding it (default: the tiny fixture)")
    args = parser.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    if args.model:
        model, inputs, params, forced, uniforms, sample, ref = upstream_reference(args.model)
        sample_params = dict(params, exaggeration=0.5, cfg_weight=0.5, **sample)
    else:
        model, inputs, params, forced, uniforms, sample, ref = fixture_reference()
        # sample_0 of the fixture ran with exaggeration 0.5.
        sample_params = dict(params, exaggeration=0.5, cfg_weight=0.5, **sample)
    checks = []
    with tempfile.TemporaryDirectory() as workdir:
        out = run_stage(args.binary, "t3-prefill", inputs, params, workdir, model)
        for name in ("cond", "prefill_embeds", "prefill_hidden", "logits"):
            checks.append((f"t3-prefill {name}", rel(out[name], ref[name]), 1e-4))
        out = run_stage(args.binary, "t3-decode-logits", dict(inputs, forced_tokens=forced), params, workdir, model)
        checks.append((f"t3-decode-logits ({len(forced)} steps)", rel(out["cfg_logits"], ref["cfg_logits"]), 1e-4))
        out = run_stage(args.binary, "t3-sample", dict(inputs, uniforms=uniforms), sample_params, workdir, model)
        n = min(len(out["tokens"]), len(ref["tokens"]))
        same = out["tokens"].tolist() == ref["tokens"].tolist()
        # End to end, so the logits' own error (~1e-6 relative) shows through peaked distributions;
        # the chain alone is checked on identical logits by the Swift tests (≤ 1e-6).
        checks.append((f"t3-sample probs ({n} steps, abs, end to end)",
                       (out["probs"][:n].double() - ref["probs"][:n].double()).abs().max().item(), 1e-6 if not args.model else 1e-3))
        checks.append((f"t3-sample tokens identical: {same}", 0.0 if same else 1.0, 0.0))
    failures = 0
    for label, err, tol in checks:
        ok = err <= tol
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {label}: {err:.3e} (tolerance {tol:.0e})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
