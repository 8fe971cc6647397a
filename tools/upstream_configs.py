"""Upstream model configurations that several tools build, written once.

Each function mirrors the upstream code it names; import it with the tools directory on sys.path:

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from upstream_configs import turbo_t3_config

The reference environment is chatterbox-tts 0.1.7. Chatterbox-Nano exists only in upstream's later
GitHub source: `use_upstream_head()` puts that source, pinned at UPSTREAM_HEAD, first on sys.path
(before anything imports `chatterbox`), so the Nano tools build their modules with upstream's own
code at that commit.
"""
import os
import subprocess
import sys

# resemble-ai/chatterbox 5de7a54 "Update ChatterboxNano (#542)": adds GPT2_small and tts_turbo(nano=True).
UPSTREAM_HEAD = "5de7a54aa4e5e2baadb0182dde554908b48b85c2"
ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
# A bare clone of https://github.com/resemble-ai/chatterbox holding UPSTREAM_HEAD.
MIRROR = os.environ.get("CHATTERBOX_UPSTREAM_GIT", "/work/.mirror/resemble-ai+chatterbox/repo")


def use_upstream_head():
    """Extracts upstream's `src/` at UPSTREAM_HEAD (git archive of MIRROR) into the ignored
    generated/upstream-<commit>/ once, and puts it first on sys.path. Returns that directory."""
    if "chatterbox" in sys.modules:
        sys.exit("use_upstream_head() must run before chatterbox is imported")
    target = os.path.join(ROOT, "generated", f"upstream-{UPSTREAM_HEAD[:7]}")
    src = os.path.join(target, "src")
    if not os.path.exists(os.path.join(src, "chatterbox", "tts_turbo.py")):
        if not os.path.isdir(MIRROR):
            sys.exit(f"upstream source at {UPSTREAM_HEAD[:7]} needed: set CHATTERBOX_UPSTREAM_GIT to a clone of "
                     "resemble-ai/chatterbox")
        os.makedirs(target, exist_ok=True)
        archive = subprocess.run(["git", "-C", MIRROR, "archive", UPSTREAM_HEAD, "src"], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", target], input=archive.stdout, check=True)
    sys.path.insert(0, src)
    return src


def turbo_t3_config(nano=False):
    """Turbo's T3Config exactly as ``tts_turbo.ChatterboxTurboTTS.from_local`` overrides the defaults:
    GPT-2 medium backbone (``nano=True``: GPT-2 small, upstream 5de7a54 only), 50,276 text tokens,
    6,563 speech tokens, no learned text/speech positions (GPT-2's ``wpe`` covers the whole
    sequence), 375 prompt tokens, no perceiver, no emotion input."""
    from chatterbox.models.t3.llama_configs import LLAMA_CONFIGS
    from chatterbox.models.t3.modules.t3_config import T3Config

    name = "GPT2_small" if nano else "GPT2_medium"
    if name not in LLAMA_CONFIGS:
        sys.exit(f"this chatterbox ({sys.modules['chatterbox'].__file__}) has no {name}: call use_upstream_head() first")
    hp = T3Config(text_tokens_dict_size=50276)
    hp.llama_config_name = name
    hp.speech_tokens_dict_size = 6563
    hp.input_pos_emb = None
    hp.speech_cond_prompt_len = 375
    hp.use_perceiver_resampler = False
    hp.emotion_adv = False
    return hp


def nano_t3_config():
    """Nano's T3Config, as ``ChatterboxTurboTTS.from_local(nano=True)`` at 5de7a54 builds it."""
    return turbo_t3_config(nano=True)
