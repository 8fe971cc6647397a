"""Upstream (chatterbox-tts 0.1.7) model configurations that several tools build, written once.

Each function mirrors the upstream code it names; import it with the tools directory on sys.path:

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from upstream_configs import turbo_t3_config
"""


def turbo_t3_config():
    """Turbo's T3Config exactly as ``tts_turbo.ChatterboxTurboTTS.from_local`` overrides the defaults:
    GPT-2 medium backbone, 50,276 text tokens, 6,563 speech tokens, no learned text/speech positions
    (GPT-2's ``wpe`` covers the whole sequence), 375 prompt tokens, no perceiver, no emotion input."""
    from chatterbox.models.t3.modules.t3_config import T3Config

    hp = T3Config(text_tokens_dict_size=50276)
    hp.llama_config_name = "GPT2_medium"
    hp.speech_tokens_dict_size = 6563
    hp.input_pos_emb = None
    hp.speech_cond_prompt_len = 375
    hp.use_perceiver_resampler = False
    hp.emotion_adv = False
    return hp
