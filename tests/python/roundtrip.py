#!/usr/bin/env python3
"""Checks heist model files against an independent NumPy forward pass, both ways.

Usage: roundtrip.py WORKDIR

WORKDIR holds, written by the Rust test:
  heist.safetensors   a model saved by heist
  images.f32          n x 784 little-endian float32 pixels in [0, 1]
  heist_scores.f32    n x 10 scores heist computed for those images

This script
  1. loads heist.safetensors with safetensors' NumPy API, re-implements the forward pass
     (TensorFlow "same" padding, (C, H, W) flatten, PyTorch weight layouts) and compares
     scores and predictions with heist's;
  2. writes numpy.safetensors, a Fashion-MNIST-architecture model with Glorot-uniform
     weights saved the way PyTorch's state_dict would be (no metadata), and
     numpy_scores.f32, its NumPy scores on the same images, for the Rust test to load.
Exit status 0 when everything agrees, 1 otherwise.
"""
import math
import os
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

CLASSES = 10


def conv2d_same(x, w, b, stride):
    """x: (n, c, h, w); w: (o, c, k, k); TensorFlow 'same' padding."""
    n, c, h, wd = x.shape
    o, _, k, _ = w.shape
    oh, ow = math.ceil(h / stride), math.ceil(wd / stride)
    ph = max((oh - 1) * stride + k - h, 0)
    pw = max((ow - 1) * stride + k - wd, 0)
    xp = np.pad(x, ((0, 0), (0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2)))
    y = np.zeros((n, o, oh, ow), dtype=np.float64)
    for i in range(k):
        for j in range(k):
            patch = xp[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride]
            y += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
    if b is not None:
        y += b[None, :, None, None]
    return y


def forward(t, images):
    """The paper's networks; the architecture follows from the tensors present."""
    x = images.reshape(-1, 1, 28, 28).astype(np.float64)
    h = conv2d_same(x, t["conv.weight"].astype(np.float64), t["conv.bias"].astype(np.float64), 2)
    mnist = "fc2.bias" in t
    if mnist:
        h = h * h
    h = h.reshape(h.shape[0], -1)  # (C, H, W) order
    h = h @ t["fc1.weight"].astype(np.float64).T + t["fc1.bias"].astype(np.float64)
    h = h * h
    h = h @ t["fc2.weight"].astype(np.float64).T
    if mnist:
        h = h + t["fc2.bias"].astype(np.float64)
    return h


def glorot(rng, shape, fan_in, fan_out):
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(np.float32)


def main():
    work = sys.argv[1]
    images = np.fromfile(os.path.join(work, "images.f32"), dtype="<f4").reshape(-1, 784)
    n = images.shape[0]
    ok = True

    path = os.path.join(work, "heist.safetensors")
    tensors = load_file(path)
    with safe_open(path, framework="np") as f:
        meta = f.metadata() or {}
    print(f"heist model: architecture {meta.get('architecture')}, tensors "
          + ", ".join(f"{k}{list(v.shape)}" for k, v in sorted(tensors.items())))
    heist_scores = np.fromfile(os.path.join(work, "heist_scores.f32"), dtype="<f4").reshape(n, CLASSES)
    ours = forward(tensors, images)
    scale = 1.0 + np.abs(ours).max()
    diff = np.abs(ours - heist_scores).max()
    print(f"heist vs numpy: max |score difference| {diff:.3g} (scale {scale:.3g})")
    if not diff <= 1e-4 * scale:
        print("FAIL: scores differ")
        ok = False
    if not np.array_equal(ours.argmax(axis=1), heist_scores.argmax(axis=1)):
        print("FAIL: predictions differ")
        ok = False

    rng = np.random.default_rng(20240601)
    model = {
        "conv.weight": glorot(rng, (5, 1, 5, 5), 25, 125),
        "conv.bias": rng.uniform(-0.1, 0.1, size=5).astype(np.float32),
        "fc1.weight": glorot(rng, (128, 980), 980, 128),
        "fc1.bias": rng.uniform(-0.1, 0.1, size=128).astype(np.float32),
        "fc2.weight": glorot(rng, (10, 128), 128, 10),
    }
    save_file(model, os.path.join(work, "numpy.safetensors"))
    forward(model, images).astype("<f4").tofile(os.path.join(work, "numpy_scores.f32"))
    print("wrote numpy.safetensors and numpy_scores.f32")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
