"""Upstream PyTorch T3 timing for `chatter-bench t3` (run by the bench, same inputs, same process tree).

Usage: t3_upstream.py <request.json>   — prints one JSON document on stdout, notes on stderr.

The request (written by the Swift bench) holds the safetensors path, thread count, dtypes, the
speaker embedding, prompt speech tokens, text ids (unwrapped), the teacher-forced speech tokens,
cfg weight, exaggeration, prefill repetitions and how many CFG logit rows to return.

With ``"family": "chatterbox-turbo"`` it builds the Turbo T3 exactly as ``ChatterboxTurboTTS.from_local``
does (GPT2_medium, no position tables, perceiver or emotion, ``del t3.tfmr.wte``; with
``"chatterbox-nano"``, GPT2_small as ``from_local(nano=True)`` at upstream 5de7a54, whose source
``upstream_configs.use_upstream_head`` imports instead of 0.1.7) and times, as
``T3.inference_turbo``: the prefill (``prepare_input_embeds`` with the start-of-speech token, one
``tfmr`` forward with ``use_cache=True``, ``speech_head`` on the last position) and the decode steps
(``speech_emb`` → ``tfmr`` with the cache → ``speech_head``), one row, no guidance.

Otherwise it builds upstream ``T3(T3Config.english_only())`` (chatterbox-tts), loads the weights as
``ChatterboxTTS.from_local`` does, and for each dtype (``model.to(torch.bfloat16)`` for bf16) times
the prefill (``prepare_conditioning`` + ``prepare_input_embeds`` + the first forward of the
``T3HuggingfaceBackend``, exactly as ``T3.inference``) and then N teacher-forced CFG decode steps
with the same forward calls as ``T3.inference`` (``output_attentions=True,
output_hidden_states=True``, KV cache), without the sampling chain.
"""
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from upstream_configs import UPSTREAM_HEAD, turbo_t3_config, use_upstream_head  # noqa: E402


def timings(prefill_length, prefill_ms, step_ms, logits):
    """One dtype's result: prefill and decode times (ms) and the logits kept for the parity check."""
    return {
        "prefill_length": int(prefill_length),
        "prefill_ms": [round(x, 2) for x in prefill_ms],
        "prefill_ms_median": round(statistics.median(prefill_ms), 2),
        "decode_steps": len(step_ms),
        "decode_ms_per_token_median": round(statistics.median(step_ms), 2),
        "decode_ms_per_token_mean": round(statistics.mean(step_ms), 2),
        "cfg_logits": logits,
    }

def main():
    request = json.load(open(sys.argv[1]))
    family = request.get("family")
    nano = family == "chatterbox-nano"
    if nano:
        use_upstream_head()
    import torch
    torch.set_num_threads(int(request["threads"]))
    from safetensors.torch import load_file
    from chatterbox.models.t3.t3 import T3
    from chatterbox.models.t3.modules.t3_config import T3Config
    from chatterbox.models.t3.modules.cond_enc import T3Cond
    from chatterbox.models.t3.inference.t3_hf_backend import T3HuggingfaceBackend
    import chatterbox
    import transformers

    def note(text):
        print(text, file=sys.stderr, flush=True)

    turbo = family in ("turbo", "chatterbox-turbo", "chatterbox-nano")
    if turbo:  # as tts_turbo.ChatterboxTurboTTS.from_local
        hp = turbo_t3_config(nano=nano)
    else:
        hp = T3Config.english_only()
    start = time.perf_counter()
    model = T3(hp)
    state = load_file(request["weights"])
    if "model" in state.keys():
        state = state["model"][0]
    model.load_state_dict(state)
    del state
    if turbo:
        del model.tfmr.wte
    model.eval()
    load_s = time.perf_counter() - start
    note(f"upstream: built and loaded T3 in {load_s:.1f} s (torch {torch.__version__}, {torch.get_num_threads()} threads)")

    cfg_weight = float(request["cfg_weight"])
    text = torch.tensor([hp.start_text_token] + request["text_tokens"] + [hp.stop_text_token], dtype=torch.long)
    text2 = torch.stack([text, text])
    prompt = torch.tensor(request["prompt_tokens"], dtype=torch.long)[None]
    forced = request["forced_tokens"]
    keep = int(request["logit_rows"])
    results = {}
    if turbo:
        text1 = torch.tensor(request["text_tokens"], dtype=torch.long)[None]
        for dtype_name in request["dtypes"]:
            dtype = {"f32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
            model.to(dtype)
            speaker = torch.tensor(request["speaker_embedding"], dtype=torch.float32)[None].to(dtype)
            with torch.inference_mode():
                prefill_ms = []
                for _ in range(int(request["prefill_repetitions"])):
                    t0 = time.perf_counter()
                    cond = T3Cond(speaker_emb=speaker, cond_prompt_speech_tokens=prompt, emotion_adv=torch.zeros(1, 1, 1))
                    start_token = hp.start_speech_token * torch.ones_like(text1[:, :1])
                    embeds, _ = model.prepare_input_embeds(t3_cond=cond, text_tokens=text1, speech_tokens=start_token,
                                                           cfg_weight=0.0)
                    out = model.tfmr(inputs_embeds=embeds, use_cache=True)
                    logits_now = model.speech_head(out[0][:, -1:])
                    prefill_ms.append((time.perf_counter() - t0) * 1e3)
                prefill_length = embeds.shape[1]
                past = out.past_key_values
                logits, step_ms = [logits_now[0, -1].float().tolist()], []
                for token in forced:
                    t0 = time.perf_counter()
                    out = model.tfmr(inputs_embeds=model.speech_emb(torch.tensor([[token]])), past_key_values=past,
                                     use_cache=True)
                    past = out.past_key_values
                    l = model.speech_head(out[0])[0, -1]
                    step_ms.append((time.perf_counter() - t0) * 1e3)
                    if len(logits) < keep:
                        logits.append(l.float().tolist())
            results[dtype_name] = timings(prefill_length, prefill_ms, step_ms, logits)
            note(f"upstream {family} {dtype_name}: prefill {statistics.median(prefill_ms):.0f} ms (T0 {prefill_length}), "
                 f"decode {statistics.median(step_ms):.1f} ms/token (median of {len(step_ms)})")
    for dtype_name in ([] if turbo else request["dtypes"]):
        dtype = {"f32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
        model.to(dtype)
        speaker = torch.tensor(request["speaker_embedding"], dtype=torch.float32)[None].to(dtype)
        with torch.inference_mode():
            prefill_ms = []
            for _ in range(int(request["prefill_repetitions"])):
                t0 = time.perf_counter()
                cond = T3Cond(speaker_emb=speaker, cond_prompt_speech_tokens=prompt,
                              emotion_adv=float(request["exaggeration"]) * torch.ones(1, 1, 1, dtype=dtype))
                embeds, _ = model.prepare_input_embeds(t3_cond=cond, text_tokens=text2,
                                                       speech_tokens=hp.start_speech_token * torch.ones_like(text2[:, :1]),
                                                       cfg_weight=cfg_weight)
                bos = model.speech_emb(torch.tensor([[hp.start_speech_token]])) + model.speech_pos_emb.get_fixed_embedding(0)
                inputs = torch.cat([embeds, torch.cat([bos, bos])], dim=1)
                backend = T3HuggingfaceBackend(config=model.cfg, llama=model.tfmr, speech_enc=model.speech_emb,
                                               speech_head=model.speech_head)
                out = backend(inputs_embeds=inputs, past_key_values=None, use_cache=True, output_attentions=True,
                              output_hidden_states=True, return_dict=True)
                prefill_ms.append((time.perf_counter() - t0) * 1e3)
            prefill_length = inputs.shape[1]
            past = out.past_key_values
            step_ms, logits = [], []
            for i in range(len(forced) + 1):
                l = out.logits[:, -1, :].float()
                if len(logits) < keep:
                    logits.append((l[0] + cfg_weight * (l[0] - l[1])).tolist())
                if i == len(forced):
                    break
                t0 = time.perf_counter()
                e = model.speech_emb(torch.tensor([[forced[i]]])) + model.speech_pos_emb.get_fixed_embedding(i + 1)
                out = backend(inputs_embeds=torch.cat([e, e]), past_key_values=past, output_attentions=True,
                              output_hidden_states=True, return_dict=True)
                past = out.past_key_values
                _ = out.logits[:, -1, :]
                step_ms.append((time.perf_counter() - t0) * 1e3)
        results[dtype_name] = timings(prefill_length, prefill_ms, step_ms, logits)
        note(f"upstream {dtype_name}: prefill {statistics.median(prefill_ms):.0f} ms (T0 {prefill_length}), "
             f"decode {statistics.median(step_ms):.1f} ms/token (median of {len(step_ms)})")
    json.dump({
        "torch": torch.__version__, "transformers": transformers.__version__,
        "chatterbox": ("source at " + UPSTREAM_HEAD[:7]) if nano else getattr(chatterbox, "__version__", "0.1.7"),
        "torch_threads": torch.get_num_threads(), "load_s": round(load_s, 2),
        "method": (f"upstream {family} T3 as ChatterboxTurboTTS.from_local{'(nano=True)' if nano else ''}; prefill = prepare_input_embeds + tfmr forward + "
                   "speech_head as T3.inference_turbo; decode = teacher-forced speech_emb -> tfmr (KV cache) -> speech_head; "
                   "torch.inference_mode") if turbo else "upstream T3(T3Config.english_only()); prefill = prepare_input_embeds + first T3HuggingfaceBackend "
                  "forward as in T3.inference; decode = teacher-forced CFG steps with T3.inference's forward calls "
                  "(output_attentions/hidden_states on, KV cache), no sampling; torch.inference_mode",
        "results": results,
    }, sys.stdout)


if __name__ == "__main__":
    main()
