"""What the compare_*.py scripts share: running one `chatter-parity` stage on named tensors, and the
relative error they report (max |ours − ref| / max |ref|, float64; inf on a shape mismatch)."""
import os
import subprocess

import numpy as np
from safetensors.torch import load_file, save_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def run_stage(binary, stage, model, tensors, workdir, metadata=None):
    """Writes `tensors` (and string `metadata`, the stage's parameters), runs the stage, reads its outputs."""
    src, dst = os.path.join(workdir, f"{stage}-in.safetensors"), os.path.join(workdir, f"{stage}-out.safetensors")
    save_file({k: v.contiguous() for k, v in tensors.items()}, src, metadata=metadata)
    subprocess.run([binary, stage, "--model", model, "--input", src, "--output", dst], check=True)
    return load_file(dst)


def rel(ours, ref):
    a, b = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))
