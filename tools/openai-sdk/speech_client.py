#!/usr/bin/env python3
"""Calls a chatterstream server through the official OpenAI Python SDK, as its users would.

For every response_format, streamed (`with_streaming_response.create` + `iter_bytes`) and not
(`create(...).content`), it saves the answer and decodes it with ffmpeg to 24 kHz mono s16le;
prints one JSON object: {format: {"streamed": {...}, "whole": {...}}} with bytes, decoded samples
and ffmpeg's exit status. Used by ChatterstreamServerTests/OpenAISDKTests (which checks the numbers)
and runnable by hand:

    python3 -m venv /tmp/v && /tmp/v/bin/pip install openai
    /tmp/v/bin/python tools/openai-sdk/speech_client.py http://127.0.0.1:8080/v1 [API_KEY]
"""
import json
import os
import subprocess
import sys
import tempfile

from openai import OpenAI

base_url = sys.argv[1]
api_key = sys.argv[2] if len(sys.argv) > 2 else "unused"
text = os.environ.get("SPEECH_TEXT", "Hello from the OpenAI SDK.")
extra = json.loads(os.environ.get("SPEECH_EXTRA", "{}"))
client = OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=120)


def decoded_samples(path, fmt):
    raw = ["-f", "s16le", "-ar", "24000", "-ac", "1"] if fmt == "pcm" else []
    result = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", *raw, "-i", path,
                             "-f", "s16le", "-ar", "24000", "-ac", "1", "-"], capture_output=True)
    return len(result.stdout) // 2, result.returncode, result.stderr.decode(errors="replace")[-300:]


report = {}
with tempfile.TemporaryDirectory() as folder:
    for fmt in ["mp3", "opus", "aac", "flac", "wav", "pcm"]:
        report[fmt] = {}
        for mode in ["streamed", "whole"]:
            path = os.path.join(folder, f"{mode}.{fmt}")
            args = dict(model="tts-1", voice="alloy", input=text, response_format=fmt, extra_body=extra)
            if mode == "streamed":
                with client.audio.speech.with_streaming_response.create(**args) as response:
                    content_type = response.headers.get("content-type")
                    with open(path, "wb") as out:
                        for piece in response.iter_bytes():
                            out.write(piece)
            else:
                response = client.audio.speech.create(**args)
                content_type = response.response.headers.get("content-type")
                with open(path, "wb") as out:
                    out.write(response.content)
            samples, status, stderr = decoded_samples(path, fmt)
            report[fmt][mode] = {"bytes": os.path.getsize(path), "samples": samples, "ffmpeg_status": status,
                                 "ffmpeg_stderr": stderr, "content_type": content_type}
print(json.dumps(report))
