#!/usr/bin/env python3
"""Compares chatter-parity's voice-encoder / campplus stages with upstream chatterbox-tts 0.1.7 at
full size, on real speech, through files.

    swift build --product chatter-parity
    tools/fixtures/.venv/bin/python tools/parity/compare_voice.py [--model DIR] [--wav FILE] [--binary ...]

DIR holds ve.safetensors and s3gen.safetensors (default generated/chatterbox, seeded random weights of
the published shapes; the published files work too). Upstream's VoiceEncoder and CAMPPlus load those
weights live. Checks: VoiceEncoder mel (1e-5) and embedding (1e-4), CAMPPlus x-vector from torchaudio's
fbank (1e-4), all max|err| / max|ref|. Exit status 1 on failure.
"""
import argparse
import os
import sys
import tempfile

import numpy as np
import torch
from safetensors.torch import load_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stage_runner import rel, run_stage  # noqa: E402






def main():
    import librosa
    import s3tokenizer
    import torchaudio.compliance.kaldi as Kaldi
    from chatterbox.models.s3gen.xvector import CAMPPlus
    from chatterbox.models.voice_encoder.melspec import melspectrogram
    from chatterbox.models.voice_encoder.voice_encoder import VoiceEncoder

    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build", "debug", "chatter-parity"))
    parser.add_argument("--model", default=os.path.join(ROOT, "generated", "chatterbox"))
    parser.add_argument("--wav", default=os.path.join(os.path.dirname(s3tokenizer.__file__), "assets", "BAC009S0764W0122.wav"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    wav, _ = librosa.load(args.wav, sr=16000)
    failures = 0
    with tempfile.TemporaryDirectory() as workdir:
        ve = VoiceEncoder().eval()
        ve.load_state_dict(load_file(os.path.join(args.model, "ve.safetensors")))
        trimmed, _ = librosa.effects.trim(wav, top_db=20)
        mel = melspectrogram(trimmed, ve.hp).T.astype(np.float32)
        embedding = ve.embeds_from_wavs([wav], sample_rate=16000)[0]
        ours = run_stage(args.binary, "voice-encoder", args.model, {"wav": torch.from_numpy(wav)}, workdir)
        for label, got, want, tol in [("mel", ours["mel"].numpy(), mel, 1e-5),
                                      ("embedding", ours["embedding"].numpy(), embedding, 1e-4)]:
            r = rel(got, want)
            failures += not r <= tol
            print(f"voice-encoder {label} {tuple(want.shape)}: relative {r:.3e} {'ok' if r <= tol else 'FAIL'}")

        state = load_file(os.path.join(args.model, "s3gen.safetensors"))
        prefix = "speaker_encoder."
        campplus = CAMPPlus(memory_efficient=False).eval()
        campplus.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
        audio = torch.from_numpy(wav)
        fbank = Kaldi.fbank(audio[None], num_mel_bins=80)
        with torch.inference_mode():
            xvector = campplus.inference([audio])[0].numpy()
        got = run_stage(args.binary, "campplus", args.model, {"fbank": fbank}, workdir)["xvector"].numpy()
        r = rel(got, xvector)
        failures += not r <= 1e-4
        print(f"campplus xvector ({fbank.shape[0]} frames): relative {r:.3e} {'ok' if r <= 1e-4 else 'FAIL'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
