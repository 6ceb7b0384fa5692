#!/usr/bin/env python3
"""ART fidelity check of heist's attack 1 (FGSM, BIM, PGD, C&W L2) on the same weights.

heist's model files are PyTorch-compatible safetensors (docs/model-format.md). This script
rebuilds the square-activation network in PyTorch, loads the weights heist attacked, runs
IBM ART's attacks with the settings that heist's own run recorded in its JSON, and compares
the accuracies (against the true labels, on the same first test images).

How to run it (in a virtual environment outside the repository):

    python3 -m venv venv
    venv/bin/pip install torch numpy safetensors adversarial-robustness-toolbox
    heist attack adversarial --dataset mnist --data-dir DATA --oracle plain \
        --attacks fgsm,bim,pgd,cw --json heist.json          # prints the model path
    venv/bin/python tests/python/art_fidelity.py --heist-json heist.json \
        --model MODEL.safetensors --data-dir DATA --threads 2 --json art.json

The model heist attacks without --model is the cached `.heist-cache/mnist-*.safetensors`
(the path is printed). C&W: heist's default C&W optimiser is Adam, ART's a line search that
halves or doubles the learning rate; heist has ART's line search too. To compare C&W at the
same settings, run heist with `--cw-optimizer line-search --cw-steps 10 --cw-iters 10
--cw-lr 0.01 --cw-const 0.01` (ART's defaults). A heist run with Adam is still compared,
and the row says that the optimisers differ (docs/adversarial.md).

`--attacks` restricts the attacks (e.g. `--attacks bim` for the speed comparison,
`art_speed.py`); `--no-compare` runs ART without a heist JSON, on the settings given by
flags (the C&W settings are then ART's defaults). Accuracy = fraction of adversarial images
the PyTorch network assigns to the true label (arg-max of the raw scores; there is no
softmax). The result passes when every compared attack is within 0.01 of heist's.
"""

import argparse
import gzip
import hashlib
import json
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file

TOLERANCE = 0.01
FILES = {"mnist": "mnist", "fashion": "fashion-mnist"}


class Net(nn.Module):
    """The paper's networks (Tables 1 and 2), as docs/model-format.md lays them out."""

    def __init__(self, arch):
        super().__init__()
        hidden = 100 if arch == "mnist" else 128
        self.arch = arch
        self.conv = nn.Conv2d(1, 5, 5, stride=2)
        self.fc1 = nn.Linear(980, hidden)
        self.fc2 = nn.Linear(hidden, 10, bias=arch == "mnist")

    def forward(self, x):
        x = self.conv(F.pad(x, (1, 2, 1, 2)))
        if self.arch == "mnist":
            x = x * x
        x = self.fc1(torch.flatten(x, 1))
        return self.fc2(x * x)


def read_idx(path, magic):
    with gzip.open(path, "rb") as f:
        data = f.read()
    (found,) = struct.unpack(">I", data[:4])
    if found != magic:
        raise ValueError(f"{path}: magic {found:#x}, expected {magic:#x}")
    if magic == 0x803:
        n, rows, cols = struct.unpack(">III", data[4:16])
        return np.frombuffer(data, np.uint8, n * rows * cols, 16).reshape(n, 1, rows, cols)
    (n,) = struct.unpack(">I", data[4:8])
    return np.frombuffer(data, np.uint8, n, 8)


def test_set(data_dir, dataset, limit):
    folder = os.path.join(data_dir, FILES[dataset])
    x = read_idx(os.path.join(folder, "t10k-images-idx3-ubyte.gz"), 0x803)[:limit]
    y = read_idx(os.path.join(folder, "t10k-labels-idx1-ubyte.gz"), 0x801)[:limit]
    # heist's `scaled`: pixel / 255 in f32.
    return x.astype(np.float32) / np.float32(255.0), y.astype(np.int64)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--heist-json", help="heist attack adversarial --oracle plain --json output")
    p.add_argument("--no-compare", action="store_true")
    p.add_argument("--dataset", choices=sorted(FILES), default=None)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--cw-limit", type=int, default=None)
    p.add_argument("--attacks", default="fgsm,bim,pgd,cw")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eps", type=float, default=0.3)
    p.add_argument("--bim-step", type=float, default=0.01)
    p.add_argument("--bim-iters", type=int, default=40)
    p.add_argument("--json", help="write the comparison here")
    args = p.parse_args()

    started = time.time()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    from art import __version__ as art_version
    from art.attacks.evasion import (
        BasicIterativeMethod,
        CarliniL2Method,
        FastGradientMethod,
        ProjectedGradientDescent,
    )
    from art.estimators.classification import PyTorchClassifier

    heist = None
    if args.heist_json and not args.no_compare:
        with open(args.heist_json) as f:
            heist = json.load(f)
    s = heist["settings"] if heist else None
    dataset = args.dataset or (heist["dataset"] if heist else "mnist")
    images = args.limit or (heist["images"] if heist else 10000)
    attacks = [a for a in args.attacks.split(",") if a]
    if heist and heist["settings"]["labels"] != "true":
        sys.exit("only --labels true runs are compared")

    fgsm_eps = s["fgsm"]["eps"] if s else args.eps
    bim = s["bim"] if s else {"eps": args.eps, "step": args.bim_step, "iters": args.bim_iters}
    pgd = s["pgd"] if s else {"eps": args.eps, "step": 0.01, "iters": 40, "restarts": 1}
    cw = s["cw"] if s else {"binary_steps": 10, "iters": 10, "lr": 0.01,
                            "initial_const": 0.01, "confidence": 0.0,
                            "optimizer": "line-search", "max_halving": 5, "max_doubling": 5}
    cw_limit = args.cw_limit or (s["cw_limit"] if s and s["cw_limit"] else 1000)

    net = Net("mnist" if dataset == "mnist" else "fashion")
    net.load_state_dict(load_file(args.model))
    net.eval()
    x, y = test_set(args.data_dir, dataset, images)
    onehot = np.eye(10, dtype=np.float32)[y]
    clf = PyTorchClassifier(
        model=net,
        loss=nn.CrossEntropyLoss(),
        input_shape=(1, 28, 28),
        nb_classes=10,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )

    def accuracy(adv, n):
        pred = clf.predict(adv, batch_size=args.batch_size).argmax(1)
        return float((pred == y[:n]).mean())

    rows = {"clean": {"art": accuracy(x, len(x)), "images": len(x)}}
    if heist:
        rows["clean"]["heist"] = heist["clean_plain_accuracy"]
    for name in attacks:
        n = min(cw_limit, len(x)) if name == "cw" else len(x)
        t = time.time()
        if name == "fgsm":
            attack = FastGradientMethod(clf, norm=np.inf, eps=fgsm_eps, batch_size=args.batch_size)
        elif name == "bim":
            attack = BasicIterativeMethod(clf, eps=bim["eps"], eps_step=bim["step"],
                                          max_iter=bim["iters"], batch_size=args.batch_size)
        elif name == "pgd":
            attack = ProjectedGradientDescent(clf, norm=np.inf, eps=pgd["eps"],
                                              eps_step=pgd["step"], max_iter=pgd["iters"],
                                              num_random_init=pgd["restarts"],
                                              batch_size=args.batch_size, verbose=False)
        elif name == "cw":
            attack = CarliniL2Method(clf, confidence=cw["confidence"],
                                     learning_rate=cw["lr"],
                                     binary_search_steps=cw["binary_steps"],
                                     max_iter=cw["iters"], initial_const=cw["initial_const"],
                                     max_halving=cw["max_halving"],
                                     max_doubling=cw["max_doubling"],
                                     batch_size=args.batch_size, verbose=False)
        else:
            sys.exit(f"unknown attack {name}")
        adv = attack.generate(x=x[:n], y=onehot[:n])
        row = {"art": accuracy(adv, n), "images": n, "art_seconds": time.time() - t}
        delta = (adv - x[:n]).reshape(n, -1)
        row["art_mean_l2"] = float(np.linalg.norm(delta, axis=1).mean())
        row["art_mean_linf"] = float(np.abs(delta).max(axis=1).mean())
        if heist:
            row["heist"] = heist[f"{name}_accuracy"]
            if name == "cw":
                row["heist_mean_l2"] = heist["cw_mean_l2"]
                row["heist_optimizer"] = cw["optimizer"]
                if cw["optimizer"] != "line-search":
                    row["note"] = "heist ran Adam, ART its line search: the optimisers differ"
        rows[name] = row
        print(f"{name}: {row}", file=sys.stderr, flush=True)

    for row in rows.values():
        if "heist" in row:
            row["difference"] = row["heist"] - row["art"]
            row["within_tolerance"] = abs(row["difference"]) <= TOLERANCE
    report = {
        "dataset": dataset,
        "model_sha256": sha256(args.model),
        "tolerance": TOLERANCE,
        "threads": args.threads,
        "batch_size": args.batch_size,
        "versions": {"art": art_version, "torch": torch.__version__, "numpy": np.__version__},
        "settings": {"fgsm_eps": fgsm_eps, "bim": bim, "pgd": pgd, "cw": cw, "cw_limit": cw_limit},
        "accuracy": rows,
        "seconds": time.time() - started,
    }
    text = json.dumps(report, indent=2)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
