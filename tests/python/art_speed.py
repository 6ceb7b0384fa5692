#!/usr/bin/env python3
"""Speed of heist's plaintext attack work against IBM ART on PyTorch, side by side.

Runs two whole processes in alternation (heist, ART, heist, ART, ...), times each from its
start to its exit (start-up, data loading and clean classification included on both sides),
and prints every run, the medians and the median of the pairwise ratios ART / heist.

    python3 tests/python/art_speed.py --runs 3 --heist target/release/heist \\
        --python venv/bin/python --data-dir DATA --model MODEL.safetensors --attack bim

`--attack bim`: BIM (eps 0.3, 40 steps of 0.01) on the 10,000 MNIST test images.
`--attack cw`: C&W L2 on the first 1,000, both with ART's line search at ART's defaults
(10 binary-search steps x 10 iterations, learning rate 0.01, initial c 0.01, at most 5
halvings and 5 doublings per step): the same algorithm on both sides.
Both sides run 2 threads (heist --threads 2, torch.set_num_threads(2)) and --oracle plain
on the heist side (no encryption: the plaintext attack work only; no accuracy-against-eps
sweep). Each run's CPU time (user + sys of the child process) is recorded beside its wall
time: on a shared machine the CPU time is the steadier figure.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def cpu_of_children():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd):
    """Wall seconds, CPU seconds (user + sys) and stdout of one run of `cmd`."""
    cpu = cpu_of_children()
    start = time.monotonic()
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seconds = time.monotonic() - start
    if done.returncode != 0:
        sys.exit(f"{cmd[0]} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return seconds, cpu_of_children() - cpu, done.stdout


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--heist", required=True, help="the heist binary (release build)")
    p.add_argument("--python", default=sys.executable, help="python with torch and ART")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--attack", choices=["bim", "cw"], default="bim")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", help="write the runs and medians here")
    args = p.parse_args()

    limit = "10000" if args.attack == "bim" else "1000"
    heist = [args.heist, "attack", "adversarial", "--dataset", "mnist", "--data-dir",
             args.data_dir, "--model", args.model, "--oracle", "plain", "--attacks",
             args.attack, "--limit", limit, "--cw-limit", limit, "--threads",
             str(args.threads), "--no-eps-curve", "--json", "-"]
    if args.attack == "cw":
        heist += ["--cw-optimizer", "line-search", "--cw-steps", "10", "--cw-iters", "10",
                  "--cw-lr", "0.01", "--cw-const", "0.01"]
    art = [args.python, os.path.join(HERE, "art_fidelity.py"), "--no-compare", "--dataset",
           "mnist", "--data-dir", args.data_dir, "--model", args.model, "--attacks",
           args.attack, "--limit", limit, "--cw-limit", limit, "--threads", str(args.threads)]
    runs = []
    for _ in range(args.runs):
        h, h_cpu, h_out = timed(heist)
        a, a_cpu, a_out = timed(art)
        runs.append({"heist_seconds": h, "art_seconds": a, "ratio": a / h,
                     "heist_cpu_seconds": h_cpu, "art_cpu_seconds": a_cpu,
                     "cpu_ratio": a_cpu / h_cpu,
                     "heist_accuracy": json.loads(h_out)[f"{args.attack}_accuracy"],
                     "art_accuracy": json.loads(a_out)["accuracy"][args.attack]["art"]})
        print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    report = {
        "attack": args.attack,
        "images": int(limit),
        "threads": args.threads,
        "runs": runs,
        "heist_median_seconds": statistics.median(r["heist_seconds"] for r in runs),
        "art_median_seconds": statistics.median(r["art_seconds"] for r in runs),
        "median_ratio": statistics.median(r["ratio"] for r in runs),
        "heist_median_cpu_seconds": statistics.median(r["heist_cpu_seconds"] for r in runs),
        "art_median_cpu_seconds": statistics.median(r["art_cpu_seconds"] for r in runs),
        "median_cpu_ratio": statistics.median(r["cpu_ratio"] for r in runs),
    }
    text = json.dumps(report, indent=2)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
