#!/usr/bin/env python3
"""Compares chatter-parity's ``conditionals`` stage with upstream ``prepare_conditionals``
(chatterbox-tts 0.1.7, ``ChatterboxTTS`` and ``ChatterboxTurboTTS``) at full size, through files.

    swift build --product chatter-parity
    tools/fixtures/.venv/bin/python tools/parity/compare_conditionals.py [--model DIR] [--binary ...]

DIR holds ve.safetensors and s3gen.safetensors (default generated/chatterbox: seeded random weights of
the published shapes). Upstream's VoiceEncoder, CAMPPlus and S3Tokenizer load those weights live and
``prepare_conditionals`` runs on a shell object holding only them (the T3 and flow networks play no
part). References: the wheel's BAC009S0764W0122.wav as shipped (16 kHz, 4 s: resampled to 24 kHz on
load) and the two utterances tiled to 10 s at 24 kHz (float WAV). Checks, per field: tokens identical;
speaker_emb and embedding within 1e-4, prompt_feat within 1e-5 (max|err| / max|ref|). Upstream keeps
an odd (2P + 1)-th prompt-mel frame that ours drops (FlowReference.aligned): compared on the first 2P.
Exit status 1 on failure.
"""
import argparse
import os
import sys
import tempfile

import numpy as np
import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stage_runner import rel, run_stage  # noqa: E402
sys.path.insert(0, os.path.join(ROOT, "tools", "fixtures"))
from fixturegen.conditionals import upstream_networks  # noqa: E402


def references(workdir):
    """(name, path) of the reference files."""
    import librosa
    import s3tokenizer
    import soundfile
    assets = os.path.join(os.path.dirname(s3tokenizer.__file__), "assets")
    shipped = os.path.join(assets, "BAC009S0764W0122.wav")
    clips = [librosa.load(os.path.join(assets, n), sr=24000)[0] for n in ("BAC009S0764W0121.wav", "BAC009S0764W0122.wav")]
    tiled = np.tile(np.concatenate(clips), 2)[: 10 * 24000]
    ten = os.path.join(workdir, "reference-10s-24k.wav")
    soundfile.write(ten, tiled, 24000, subtype="FLOAT")
    return [("4s-16k", shipped), ("10s-24k", ten)]


def upstream_conditionals(family, networks, path, exaggeration):
    from chatterbox.tts import ChatterboxTTS
    from chatterbox.tts_turbo import ChatterboxTurboTTS
    from fixturegen.conditionals import upstream_tts_shell
    cls, prompt_len = (ChatterboxTurboTTS, 375) if family == "chatterbox-turbo" else (ChatterboxTTS, 150)
    tts = upstream_tts_shell(cls, *networks, prompt_len)
    with torch.inference_mode():
        cls.prepare_conditionals(tts, path, exaggeration=exaggeration)
    out = {f"t3.{k}": v for k, v in tts.conds.t3.__dict__.items() if torch.is_tensor(v)}
    out.update({f"gen.{k}": v for k, v in tts.conds.gen.items() if torch.is_tensor(v)})
    return out


def ours(binary, model, path, family, exaggeration, workdir):
    return run_stage(binary, "conditionals", model, {}, workdir,
                     metadata={"reference": path, "family": family, "exaggeration": str(exaggeration)})




def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "debug", "chatter-parity"))
    parser.add_argument("--model", default=os.path.join(ROOT, "generated", "chatterbox"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    networks = upstream_networks(args.model)
    failures = 0
    with tempfile.TemporaryDirectory() as workdir:
        for ref_name, path in references(workdir):
            for family in ("chatterbox", "chatterbox-turbo"):
                if family == "chatterbox-turbo" and ref_name == "4s-16k":
                    continue  # Turbo refuses references of 5 s or less (tested in ConditionalsTests)
                want = upstream_conditionals(family, networks, path, 0.6)
                got = ours(args.binary, args.model, path, family, 0.6, workdir)
                p = want["gen.prompt_token"].shape[1]
                checks = []
                for key in ("t3.cond_prompt_speech_tokens", "gen.prompt_token", "gen.prompt_token_len"):
                    same = torch.equal(got[key], want[key])
                    checks.append((key, f"{tuple(want[key].shape)} identical" if same else "DIFFER", same))
                feat_want = want["gen.prompt_feat"][:, : 2 * p]
                for key, g, w, tol in [("t3.speaker_emb", got["t3.speaker_emb"], want["t3.speaker_emb"], 1e-4),
                                       ("t3.emotion_adv", got["t3.emotion_adv"], want["t3.emotion_adv"], 0),
                                       ("gen.prompt_feat", got["gen.prompt_feat"], feat_want, 1e-5),
                                       ("gen.embedding", got["gen.embedding"], want["gen.embedding"], 1e-4)]:
                    r = rel(g, w)
                    checks.append((key, f"relative {r:.2e}", r <= tol))
                extra = want["gen.prompt_feat"].shape[1] - 2 * p
                for key, text, ok in checks:
                    failures += not ok
                    print(f"{family:17s} {ref_name:8s} {key:30s} {text} {'ok' if ok else 'FAIL'}")
                print(f"{family:17s} {ref_name:8s} upstream prompt_feat frames beyond 2P: {extra}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
