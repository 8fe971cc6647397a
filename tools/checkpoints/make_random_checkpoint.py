#!/usr/bin/env python3
"""Builds a full-size upstream checkpoint directory with seeded random weights.

    tools/fixtures/.venv/bin/python tools/checkpoints/make_random_checkpoint.py \
        --family chatterbox|chatterbox-turbo|chatterbox-multilingual|chatterbox-nano --out generated/chatterbox
        [--seed 0] [--schema-out PATH]

The files have exactly the published names, key names, shapes and dtypes (a freshly constructed
upstream module saved with safetensors reproduces the published file sizes byte for byte; see
../shared/reference/checkpoints.md), so they exercise the converter, the loaders and the benchmarks as
the real weights would. Tokenizer files are the real ones (../shared/assets). `conds.pt` is a random
built-in voice with the real structure. Never commit the output (generated/ is git-ignored).

--schema-out writes {file: {key: [dtype, shape]}} for every tensor file, the key/shape truth the
converter validates against.

chatterbox-nano is built with upstream's own code at upstream_configs.UPSTREAM_HEAD (5de7a54, the
commit that adds it; the reference environment's 0.1.7 has no GPT2_small): its source is extracted
from the upstream git mirror into generated/upstream-5de7a54/ and imported instead of 0.1.7. Its
other files are Turbo's modules and Turbo's tokenizer files, as `from_local(nano=True)` reads them.

chatterbox-multilingual holds both published T3 files, as the hub does: `t3_mtl23ls_v2.safetensors`
and `t3_mtl23ls_v3.safetensors` (same architecture, V3 drawn from seed + V3_SEED_OFFSET).
`Cangjie5_TC.json` is not written (it is not in ../shared/assets; upstream passes Chinese characters
through when it is missing).
"""
import argparse
import json
import os
import shutil
import sys
import time

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from upstream_configs import nano_t3_config, turbo_t3_config, use_upstream_head  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ASSETS = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "assets"))


# The multilingual V3 T3 is drawn from `--seed` + this, so that it differs from V2.
V3_SEED_OFFSET = 1000


def contiguous(state):
    return {k: v.detach().contiguous() for k, v in state.items()}


def random_conds(path, prompt_len, generator):
    from chatterbox.models.t3.modules.cond_enc import T3Cond
    from chatterbox.tts import Conditionals

    t3 = T3Cond(
        speaker_emb=torch.nn.functional.normalize(torch.randn(1, 256, generator=generator), dim=-1),
        cond_prompt_speech_tokens=torch.randint(0, 6561, (1, prompt_len), generator=generator),
        emotion_adv=0.5 * torch.ones(1, 1, 1),
    )
    gen = dict(
        prompt_token=torch.randint(0, 6561, (1, 250), generator=generator),
        prompt_token_len=torch.tensor([250]),
        # Saved transposed, as the real files are (stride (80*T, 1, T)).
        prompt_feat=torch.randn(1, 80, 500, generator=generator).transpose(1, 2),
        prompt_feat_len=None,
        embedding=torch.randn(1, 192, generator=generator),
    )
    Conditionals(t3, gen).save(path)


def schema_of(state):
    return {k: [str(v.dtype).replace("torch.", ""), list(v.shape)] for k, v in state.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", required=True, choices=["chatterbox", "chatterbox-turbo", "chatterbox-multilingual",
                                                                 "chatterbox-nano"])
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--schema-out")
    args = parser.parse_args()
    if args.family == "chatterbox-nano":
        print(f"upstream source: {use_upstream_head()}", file=sys.stderr)

    from chatterbox.models.s3gen import S3Gen
    from chatterbox.models.t3 import T3
    from chatterbox.models.t3.modules.t3_config import T3Config
    from chatterbox.models.voice_encoder import VoiceEncoder

    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed + 1)
    os.makedirs(args.out, exist_ok=True)
    schema = {}
    started = time.time()

    def save_safetensors(name, state):
        state = contiguous(state)
        save_file(state, os.path.join(args.out, name))
        schema[name] = schema_of(state)
        print(f"{name}: {len(state)} tensors, {os.path.getsize(os.path.join(args.out, name))} bytes", file=sys.stderr)

    def save_pickle(name, state):
        state = contiguous(state)
        torch.save(state, os.path.join(args.out, name))
        schema[name] = schema_of(state)
        print(f"{name}: {len(state)} tensors, {os.path.getsize(os.path.join(args.out, name))} bytes", file=sys.stderr)

    if args.family == "chatterbox":
        save_safetensors("ve.safetensors", VoiceEncoder().state_dict())
        save_safetensors("t3_cfg.safetensors", T3(T3Config.english_only()).state_dict())
        s3 = S3Gen().state_dict()
        s3.pop("tokenizer.window")  # absent from the published file (loaded with strict=False)
        save_safetensors("s3gen.safetensors", s3)
        shutil.copy(os.path.join(ASSETS, "chatterbox-en", "tokenizer.json"), args.out)
        random_conds(os.path.join(args.out, "conds.pt"), 150, generator)
    elif args.family in ("chatterbox-turbo", "chatterbox-nano"):
        nano = args.family == "chatterbox-nano"
        save_safetensors("ve.safetensors", VoiceEncoder().state_dict())
        hp = nano_t3_config() if nano else turbo_t3_config()  # overrides exactly as tts_turbo.py
        save_safetensors("t3_nano_v1.safetensors" if nano else "t3_turbo_v1.safetensors", T3(hp).state_dict())
        save_safetensors("s3gen_meanflow.safetensors", S3Gen(meanflow=True).state_dict())
        for name in ["vocab.json", "merges.txt", "added_tokens.json", "special_tokens_map.json", "tokenizer_config.json"]:
            shutil.copy(os.path.join(ASSETS, "chatterbox-turbo", name), args.out)
        random_conds(os.path.join(args.out, "conds.pt"), 375, generator)
    else:
        save_pickle("ve.pt", VoiceEncoder().state_dict())
        save_safetensors("t3_mtl23ls_v2.safetensors", T3(T3Config.multilingual()).state_dict())
        save_pickle("s3gen.pt", S3Gen().state_dict())
        shutil.copy(os.path.join(ASSETS, "chatterbox-mtl", "grapheme_mtl_merged_expanded_v1.json"), args.out)
        random_conds(os.path.join(args.out, "conds.pt"), 150, generator)
        # V3 (upstream 3f35dfc: `t3_model="v3"`) is V2's architecture with other weights; drawn last,
        # from its own seed, so that the V2 files stay byte-identical to a V2-only run.
        torch.manual_seed(args.seed + V3_SEED_OFFSET)
        save_safetensors("t3_mtl23ls_v3.safetensors", T3(T3Config.multilingual()).state_dict())

    if args.schema_out:
        with open(args.schema_out, "w") as out:
            json.dump(schema, out, indent=0, sort_keys=True)
            out.write("\n")
    print(f"done in {time.time() - started:.1f} s: {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
