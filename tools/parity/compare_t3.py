#!/usr/bin/env python3
"""Compares chatter-parity's T3 stages (t3-prefill, t3-decode-logits, t3-sample) with upstream
chatterbox-tts 0.1.7, end to end through files, for the original T3 (Llama, CFG), for
Chatterbox-Turbo's (GPT-2 medium, ``T3.inference_turbo``) and for Chatterbox-Nano's (GPT-2 small, the
same code path; built with upstream's source at 5de7a54, ``upstream_configs.use_upstream_head``, since
0.1.7 has no Nano).

    swift build -c release --product chatter-parity
    tools/fixtures/.venv/bin/python tools/parity/compare_t3.py                      # tiny original fixture
    tools/fixtures/.venv/bin/python tools/parity/compare_t3.py --tiny-turbo         # tiny Turbo fixture
    tools/fixtures/.venv/bin/python tools/parity/compare_t3.py --model DIR_OR_FILE  # a full-size checkpoint
    tools/fixtures/.venv/bin/python tools/parity/compare_t3.py --model generated/chatterbox-nano  # Nano
    tools/fixtures/.venv/bin/python tools/parity/compare_t3.py --model generated/chatterbox-multilingual --t3 v2
    tools/fixtures/.venv/bin/python tools/parity/compare_t3.py --model generated/chatterbox-multilingual --t3 v3

Without --model it uses the tiny upstream model stored in Tests/Fixtures/t3/tiny.safetensors
(weights under ``tiny.w.``, 4 heads, speech start/stop 198/199) and its stored references;
``--tiny-turbo`` does the same with Tests/Fixtures/t3/turbo_tiny.safetensors (2 heads, start/stop
62/63; both of its sampling cases). With --model (a T3 safetensors file, or a directory holding
``t3_cfg.safetensors``, ``t3_turbo_v1.safetensors`` or ``t3_nano_v1.safetensors``; Turbo when the file
has ``tfmr.wpe.weight``, Nano when it is called ``t3_nano_v1.safetensors``: 12 heads, which the
weights cannot show)
it loads the checkpoint into upstream ``T3`` (fp32) and computes the references live, with random
inputs: original, a speaker embedding, 150 prompt tokens, 40 text ids, 20 teacher-forced steps and
20 sampled tokens; Turbo, a speaker embedding, 375 prompt tokens, 40 GPT-2 text ids, 20
teacher-forced steps and 50 sampled tokens (temperature 0.8, top_k 1000, top_p 0.95, repetition
penalty 1.2: ``generate``'s defaults, applied in that order). Sampling replaces
``torch.multinomial`` by inverse-CDF draws from the same uniforms the stage receives.

Multilingual (``t3_mtl23ls_v2`` / ``t3_mtl23ls_v3.safetensors``, ``--t3`` picks one from a directory
holding both; the Llama T3 with 2454 text ids): a speaker embedding, 150 prompt tokens, 40 text ids
(1 … 2453, never the 255 start token), 20 teacher-forced steps, then ``mtl_tts.generate``'s sampling
defaults (temperature 0.8, cfg 0.5, min_p 0.05, top_p 1.0). V2 against the pinned 0.1.7, whose
``T3.inference`` runs the ``AlignmentStreamAnalyzer`` (repetition penalty 2.0); its count of draws
whose logits the analyser changed (EOS suppressed; EOS forced) is compared with ours. The uniforms are
drawn as usual except one: at the first draw from 40 on where the previous token survives the
processors, the uniform is set to the middle of that token's CDF interval, so the token repeats and the
analyser must force EOS on the next draw (its ``token_repetition`` rule): an input chosen so that both
kinds of intervention happen. V3 against upstream 5de7a54 (``use_upstream_head``: no analyser,
repetition penalty 1.2), 50 draws.
Exit status 1 if any check exceeds its tolerance.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from upstream_configs import turbo_t3_config, use_upstream_head  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL_FILES = ("t3_cfg.safetensors", "t3_turbo_v1.safetensors", "t3_nano_v1.safetensors", "t3_mtl23ls_v3.safetensors",
               "t3_mtl23ls_v2.safetensors")
NANO_FILE = "t3_nano_v1.safetensors"
MULTILINGUAL_FILES = {"v2": "t3_mtl23ls_v2.safetensors", "v3": "t3_mtl23ls_v3.safetensors"}


def run_stage(binary, stage, tensors, params, workdir, model):
    src = os.path.join(workdir, f"{stage}-in.safetensors")
    dst = os.path.join(workdir, f"{stage}-out.safetensors")
    save_file({k: v.contiguous() for k, v in tensors.items()}, src, metadata={k: str(v) for k, v in params.items()})
    subprocess.run([binary, stage, "--input", src, "--output", dst, "--model", model], check=True)
    return load_file(dst)


def rel(ours, ref):
    ref = ref.double()
    return ((ours.double() - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()


def make_fake_multinomial(uniforms, seen, toks):
    """torch.multinomial replaced by the inverse-CDF rule t3-sample applies to the same uniforms
    (as tools/fixtures/fixturegen/t3.py and t3_turbo.py do)."""
    it = iter(uniforms.tolist())

    def fake_multinomial(p, num_samples=1, **_):
        u = next(it)
        row = p[0].to(torch.float64)
        c = torch.cumsum(row, 0)
        hits = ((c > u * c[-1]) & (row > 0)).nonzero()
        tok = int(hits[0, 0]) if len(hits) else int(row.argmax())
        seen.append(p[0].clone())
        toks.append(tok)
        return torch.tensor([[tok]])

    return fake_multinomial


def resolve_model(model_path, t3_version=None):
    if not os.path.isdir(model_path):
        return model_path
    if t3_version is not None:
        return os.path.join(model_path, MULTILINGUAL_FILES[t3_version])
    for name in MODEL_FILES:
        path = os.path.join(model_path, name)
        if os.path.exists(path):
            return path
    sys.exit(f"{model_path}: no {' or '.join(MODEL_FILES)}")


def is_turbo(path):
    with safe_open(path, "pt") as f:
        return "tfmr.wpe.weight" in f.keys()


def cfg_reference(model, cond_obj, text2, forced, steps, cfg_weight):
    """The Llama T3's CFG reference shared by the original and multilingual modes (inside
    `torch.inference_mode()`): conditioning, prefill embeddings / hidden states / logits, and the CFG
    logits of `steps` teacher-forced decode steps through upstream's HF backend."""
    from chatterbox.models.t3.inference.t3_hf_backend import T3HuggingfaceBackend

    hp = model.hp
    ref = {"cond": model.prepare_conditioning(cond_obj())}
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
    return ref


def upstream_reference(path, steps=20):
    """Live references from upstream T3 over a real original (Llama, CFG) checkpoint."""
    from chatterbox.models.t3 import T3
    from chatterbox.models.t3.modules.cond_enc import T3Cond

    model = T3()
    model.load_state_dict(load_file(path))
    model.eval()
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
    with torch.inference_mode():
        ref = cfg_reference(model, cond_obj, text2, forced, steps, cfg_weight)

        seen, toks = [], []
        real = torch.multinomial
        torch.multinomial = make_fake_multinomial(uniforms, seen, toks)
        try:
            model.inference(t3_cond=cond_obj(), text_tokens=text2, max_new_tokens=steps, temperature=0.8,
                            cfg_weight=cfg_weight, repetition_penalty=1.2, min_p=0.05, top_p=1.0)
        finally:
            torch.multinomial = real
    inputs = {"speaker_emb": speaker, "prompt_tokens": prompt, "text_tokens": text}
    params = {"exaggeration": exaggeration, "cfg_weight": cfg_weight}
    sample = dict(params, temperature=0.8, repetition_penalty=1.2, min_p=0.05, top_p=1.0, max_new_tokens=steps)
    samples = [("sample", uniforms, sample, torch.stack(seen), torch.tensor(toks), None, None)]
    return inputs, params, forced, ref, samples


def multilingual_reference(path, steps=20, draws=50, repeat_from=40):
    """Live references from upstream's multilingual T3 (``T3(T3Config.multilingual())`` as
    ``ChatterboxMultilingualTTS.from_local`` builds it). V2 (0.1.7) runs its alignment analyser."""
    from chatterbox.models.t3 import T3
    from chatterbox.models.t3.modules.cond_enc import T3Cond
    from chatterbox.models.t3.modules.t3_config import T3Config

    v2 = os.path.basename(path) == MULTILINGUAL_FILES["v2"]
    model = T3(T3Config.multilingual())
    state = load_file(path)
    if "model" in state.keys():
        state = state["model"][0]
    model.load_state_dict(state)
    del state
    model.eval()
    hp = model.hp
    g = torch.Generator().manual_seed(1)
    speaker = torch.nn.functional.normalize(torch.randn(1, 256, generator=g), dim=-1)
    prompt = torch.randint(0, 6561, (150,), generator=g)
    text = torch.randint(1, 2454, (40,), generator=g)
    text[text == hp.start_text_token] = 1
    forced = torch.randint(0, 6561, (steps,), generator=g)
    uniforms = torch.rand(draws, generator=g, dtype=torch.float64)
    exaggeration, cfg_weight = 0.5, 0.5
    repetition_penalty = 2.0 if v2 else 1.2   # generate's default per version
    wrapped = torch.cat([torch.tensor([hp.start_text_token]), text, torch.tensor([hp.stop_text_token])])
    text2 = torch.stack([wrapped, wrapped])
    cond_obj = lambda: T3Cond(speaker_emb=speaker, cond_prompt_speech_tokens=prompt[None],
                              emotion_adv=exaggeration * torch.ones(1, 1, 1))
    with torch.inference_mode():
        ref = cfg_reference(model, cond_obj, text2, forced, steps, cfg_weight)

        # Sampling: inverse-CDF draws; V2 repeats one token on purpose (see the module docstring).
        seen, toks, used = [], [], []
        counts = {"suppressed": 0, "forced": 0}
        state = {"repeated": False}

        def fake_multinomial(p, num_samples=1, **_):
            row = p[0].to(torch.float64)
            c = torch.cumsum(row, 0)
            u = float(uniforms[len(toks)])
            if v2 and not state["repeated"] and len(toks) >= repeat_from and row[toks[-1]] > 0:
                u = float((c[toks[-1]] - row[toks[-1]] / 2) / c[-1])
                state["repeated"] = True
            hits = ((c > u * c[-1]) & (row > 0)).nonzero()
            tok = int(hits[0, 0]) if len(hits) else int(row.argmax())
            seen.append(p[0].clone())
            toks.append(tok)
            used.append(u)
            return torch.tensor([[tok]])

        real = torch.multinomial
        torch.multinomial = fake_multinomial
        patched = None
        if v2:
            from chatterbox.models.t3.inference import alignment_stream_analyzer as asa
            patched = asa.AlignmentStreamAnalyzer.step

            def counting_step(self, logits, next_token=None):
                out = patched(self, logits, next_token=next_token)
                eos = self.eos_idx
                if out[0, eos] == 2 ** 15:
                    counts["forced"] += 1
                elif out[0, eos] == -(2 ** 15):
                    counts["suppressed"] += 1
                return out

            asa.AlignmentStreamAnalyzer.step = counting_step
        try:
            model.inference(t3_cond=cond_obj(), text_tokens=text2, max_new_tokens=draws, temperature=0.8,
                            cfg_weight=cfg_weight, repetition_penalty=repetition_penalty, min_p=0.05, top_p=1.0)
        finally:
            torch.multinomial = real
            if patched is not None:
                asa.AlignmentStreamAnalyzer.step = patched
    inputs = {"speaker_emb": speaker, "prompt_tokens": prompt, "text_tokens": text}
    params = {"exaggeration": exaggeration, "cfg_weight": cfg_weight}
    sample = dict(params, temperature=0.8, repetition_penalty=repetition_penalty, min_p=0.05, top_p=1.0,
                  max_new_tokens=draws)
    used = torch.tensor(used + uniforms[len(used):].tolist(), dtype=torch.float64)
    expected_counts = torch.tensor([counts["suppressed"], counts["forced"]]) if v2 else torch.tensor([0, 0])
    samples = [("sample", used, sample, torch.stack(seen), torch.tensor(toks), None, expected_counts)]
    return inputs, params, forced, ref, samples


def turbo_reference(path, steps=20, draws=50):
    """Live references from upstream's Turbo T3 (GPT-2 medium; Nano: GPT-2 small), built as
    ChatterboxTurboTTS.from_local builds it, over a real t3_turbo_v1.safetensors (t3_nano_v1)."""
    from chatterbox.models.t3 import T3
    from chatterbox.models.t3.modules.cond_enc import T3Cond

    hp = turbo_t3_config(nano=os.path.basename(path) == NANO_FILE)
    model = T3(hp)
    state = load_file(path)
    if "model" in state.keys():
        state = state["model"][0]
    model.load_state_dict(state)
    del state
    del model.tfmr.wte
    model.eval()
    g = torch.Generator().manual_seed(1)
    speaker = torch.nn.functional.normalize(torch.randn(1, 256, generator=g), dim=-1)
    prompt = torch.randint(0, hp.start_speech_token, (hp.speech_cond_prompt_len,), generator=g)
    text = torch.randint(0, 50257, (40,), generator=g)   # GPT-2's own vocabulary (no added tokens)
    forced = torch.randint(0, hp.start_speech_token, (steps,), generator=g)
    uniforms = torch.rand(draws, generator=g, dtype=torch.float64)
    settings = dict(temperature=0.8, top_k=1000, top_p=0.95, repetition_penalty=1.2)   # generate's defaults
    # emotion_adv is off for Turbo: the value is ignored (generate passes exaggeration · ones).
    cond_obj = lambda: T3Cond(speaker_emb=speaker, cond_prompt_speech_tokens=prompt[None],
                              emotion_adv=0.5 * torch.ones(1, 1, 1))
    ref = {}
    with torch.inference_mode():
        ref["cond"] = model.prepare_conditioning(cond_obj())
        start = hp.start_speech_token * torch.ones_like(text[None, :1])
        embeds, _ = model.prepare_input_embeds(t3_cond=cond_obj(), text_tokens=text[None], speech_tokens=start,
                                               cfg_weight=0.0)
        out = model.tfmr(inputs_embeds=embeds, use_cache=True)   # GPT-2 adds wpe at positions 0 … T0 − 1
        hidden, past = out[0], out.past_key_values
        ref["prefill_embeds"], ref["prefill_hidden"] = embeds, hidden
        rows = [model.speech_head(hidden[:, -1:])[0, -1]]
        ref["logits"] = rows[0][None].clone()
        for i in range(steps):
            # as inference_turbo: speech_emb only; GPT-2 adds wpe at T0 + i (the cache length)
            out = model.tfmr(inputs_embeds=model.speech_emb(forced[i].view(1, 1)), past_key_values=past, use_cache=True)
            past = out.past_key_values
            rows.append(model.speech_head(out[0])[0, -1])
        ref["cfg_logits"] = torch.stack(rows)

        seen, toks = [], []
        real = torch.multinomial
        torch.multinomial = make_fake_multinomial(uniforms, seen, toks)
        try:
            predicted = model.inference_turbo(cond_obj(), text[None], max_gen_len=draws - 1, **settings)
        finally:
            torch.multinomial = real
        post = predicted[0]
        post = post[post < hp.start_speech_token]
    inputs = {"speaker_emb": speaker, "prompt_tokens": prompt, "text_tokens": text}
    samples = [("sample", uniforms, dict(settings, max_new_tokens=draws), torch.stack(seen), torch.tensor(toks), post, None)]
    return inputs, {}, forced, ref, samples


def fixture_reference():
    path = os.path.join(ROOT, "Tests", "Fixtures", "t3", "tiny.safetensors")
    f = load_file(path)
    t = lambda role, case="tiny": f[f"{case}.{role}"]
    inputs = {"speaker_emb": t("speaker_emb"), "prompt_tokens": t("prompt_tokens"), "text_tokens": t("text_tokens")[1:-1]}
    params = {"exaggeration": 0.7, "cfg_weight": 0.5, "heads": 4, "start_speech": 198, "stop_speech": 199,
              "weight_prefix": "tiny.w."}
    ref = {"cond": t("cond"), "prefill_embeds": t("prefill_embeds"), "prefill_hidden": t("prefill_hidden"),
           "logits": t("prefill_logits"), "cfg_logits": t("cfg_logits")}
    # sample_0 of the fixture ran with exaggeration 0.5.
    sample = dict(params, exaggeration=0.5, cfg_weight=0.5, temperature=0.8, repetition_penalty=1.2, min_p=0.05,
                  top_p=1.0, max_new_tokens=50)
    samples = [("sample_0", t("uniforms", "sample_0"), sample, t("probs", "sample_0"), t("tokens", "sample_0"), None, None)]
    return path, inputs, params, t("forced_tokens"), ref, samples


def tiny_turbo_reference():
    """The tiny Turbo fixture of tools/fixtures/fixturegen/t3_turbo.py and its stored references."""
    import json

    path = os.path.join(ROOT, "Tests", "Fixtures", "t3", "turbo_tiny.safetensors")
    f = load_file(path)
    with safe_open(path, "pt") as handle:
        cases = {c["name"]: c["params"] for c in json.loads(handle.metadata()["fixture"])["cases"]}
    t = lambda role, case="tiny": f[f"{case}.{role}"]
    tiny = cases["tiny"]
    inputs = {"speaker_emb": t("speaker_emb"), "prompt_tokens": t("prompt_tokens"), "text_tokens": t("text_tokens")}
    params = {"heads": tiny["heads"], "start_speech": tiny["start_speech"], "stop_speech": tiny["stop_speech"],
              "weight_prefix": "tiny.w."}
    ref = {"cond": t("cond"), "prefill_embeds": t("prefill_embeds"), "prefill_hidden": t("prefill_hidden"),
           "logits": t("prefill_logits"), "cfg_logits": t("logits")}
    samples = []
    for name in sorted(c for c in cases if c.startswith("sample_")):
        samples.append((name, t("uniforms", name), dict(params, **cases[name]), t("probs", name), t("tokens", name),
                        t("post", name), None))
    return path, inputs, params, t("forced_tokens"), ref, samples


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "release", "chatter-parity"))
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--model", help="t3_cfg / t3_turbo_v1 / t3_nano_v1 .safetensors or a directory holding one "
                                      "(default: the tiny original fixture)")
    mode.add_argument("--tiny-turbo", action="store_true", help="the tiny Turbo fixture (t3/turbo_tiny)")
    parser.add_argument("--t3", choices=sorted(MULTILINGUAL_FILES),
                        help="with --model DIR: the multilingual T3 version to take from DIR (v2: 0.1.7 with its alignment "
                             "analyser; v3: upstream 5de7a54)")
    args = parser.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    live = args.model is not None
    if live:
        model = resolve_model(args.model, args.t3)
        nano = os.path.basename(model) == NANO_FILE
        multilingual = os.path.basename(model) in MULTILINGUAL_FILES.values()
        if nano or os.path.basename(model) == MULTILINGUAL_FILES["v3"]:
            print(f"upstream source: {use_upstream_head()}", flush=True)
        turbo = is_turbo(model)
        kind = ("Nano (GPT-2 small)" if nano else "Turbo (GPT-2)" if turbo else
                f"multilingual {os.path.basename(model)} (Llama, CFG)" if multilingual else "original (Llama, CFG)")
        print(f"{model}: {kind}", flush=True)
        reference = turbo_reference if turbo else multilingual_reference if multilingual else upstream_reference
        inputs, params, forced, ref, samples = reference(model)
    elif args.tiny_turbo:
        turbo = True
        model, inputs, params, forced, ref, samples = tiny_turbo_reference()
    else:
        turbo = False
        model, inputs, params, forced, ref, samples = fixture_reference()
    decode_label = "logits" if turbo else "CFG logits"
    checks = []
    with tempfile.TemporaryDirectory() as workdir:
        out = run_stage(args.binary, "t3-prefill", inputs, params, workdir, model)
        for name in ("cond", "prefill_embeds", "prefill_hidden", "logits"):
            checks.append((f"t3-prefill {name}", rel(out[name], ref[name]), 1e-4))
        out = run_stage(args.binary, "t3-decode-logits", dict(inputs, forced_tokens=forced), params, workdir, model)
        checks.append((f"t3-decode-logits ({len(forced)} steps, {decode_label})", rel(out["cfg_logits"], ref["cfg_logits"]),
                       1e-4))
        for label, uniforms, sample_params, ref_probs, ref_tokens, ref_speech, ref_counts in samples:
            out = run_stage(args.binary, "t3-sample", dict(inputs, uniforms=uniforms), sample_params, workdir, model)
            n = min(len(out["tokens"]), len(ref_tokens))
            support = (ref_probs > 0).sum(-1)
            print(f"t3-sample {label}: upstream's distributions keep {int(support.min())}–{int(support.max())} of "
                  f"{ref_probs.shape[-1]} ids, top probability {ref_probs.max(-1).values.min():.3g}–"
                  f"{ref_probs.max(-1).values.max():.3g}", flush=True)
            same = out["tokens"].tolist() == ref_tokens.tolist()
            # End to end, so the logits' own error (~1e-6 relative) shows through peaked distributions;
            # the chain alone is checked on identical logits by the Swift tests (≤ 1e-6).
            checks.append((f"t3-sample {label} probs ({n} steps, abs, end to end)",
                           (out["probs"][:n].double() - ref_probs[:n].double()).abs().max().item(),
                           1e-3 if live else 1e-6))
            checks.append((f"t3-sample {label} tokens identical ({len(out['tokens'])} vs {len(ref_tokens)}): {same}",
                           0.0 if same else 1.0, 0.0))
            if ref_counts is not None:
                ours = out["alignment_counts"].tolist()
                same = ours == ref_counts.tolist()
                checks.append((f"t3-sample {label} alignment analyser: draws with EOS suppressed / forced, ours {ours}, "
                               f"upstream {ref_counts.tolist()}: {same}", 0.0 if same else 1.0, 0.0))
            if ref_speech is not None:
                same = out["speech_tokens"].tolist() == ref_speech.tolist()
                checks.append((f"t3-sample {label} speech_tokens identical ({len(out['speech_tokens'])} vs "
                               f"{len(ref_speech)}): {same}", 0.0 if same else 1.0, 0.0))
    failures = 0
    for label, err, tol in checks:
        ok = err <= tol
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {label}: {err:.3e} (tolerance {tol:.0e})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
