#!/usr/bin/env python3
"""Checks a `heist reproduce` results.json: every table is present and filled, and the
encrypted service agrees with plaintext where it must (BFV bit for bit, CKKS on clean
images, the networks under the trusted party's default release policy).

Usage: check_results.py RESULTS_JSON
"""
import json
import sys

SECTIONS = ["table3", "table4", "table5", "table6", "table7",
            "key_recovery", "countermeasures", "settings", "data_source", "seconds"]


def main(path):
    with open(path, encoding="utf-8") as f:
        results = json.load(f)
    failures = []

    def check(ok, what):
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            failures.append(what)

    for key in SECTIONS:
        check(key in results and results[key] not in ({}, None, ""), f"{key} present and filled")
    for dataset, runs in results.get("table3", {}).items():
        for name, run in runs.items():
            images = run.get("images", 0)
            check(images > 0, f"table3.{dataset}.{name}: {images} images classified")
            if run.get("scheme") == "bfv":
                identical = run.get("integer_scores_identical")
                check(identical == 1.0,
                      f"table3.{dataset}.{name}: BFV scores equal the integer model's bit for bit ({identical})")
            else:
                check(run.get("agreement", 0) >= 0.99,
                      f"table3.{dataset}.{name}: CKKS agrees with plaintext on >= 99% ({run.get('agreement')})")
    for dataset, run in results.get("table4", {}).items():
        check(run.get("encrypted") is True, f"table4.{dataset}: queries encrypted")
        check(run.get("clean_agreement", 0) >= 0.99,
              f"table4.{dataset}: clean images agree with plaintext on >= 99% ({run.get('clean_agreement')})")
        check(run.get("pgd_accuracy", 1) < run.get("clean_accuracy", 0),
              f"table4.{dataset}: PGD lowers accuracy ({run.get('clean_accuracy')} -> {run.get('pgd_accuracy')})")
    for table in ["table5", "table6", "table7"]:
        for dataset, run in results.get(table, {}).items():
            check(run.get("encrypted") is True, f"{table}.{dataset}: queries encrypted")
    for name, run in results.get("key_recovery", {}).items():
        if run.get("adversary") == "active":
            check(run.get("recovered") is True and run.get("verified_on_unseen") is True,
                  f"key_recovery.{name}: the active adversary recovers and verifies the key")
    for name, run in results.get("countermeasures", {}).items():
        check(run.get("recovered") is False and run.get("verified_on_unseen") is False,
              f"countermeasures.{name}: no key under the trusted party's default ({run.get('release')})")
        # The default CKKS release adds noise (sigma 0.1) on purpose: its 99.9 % agreement is
        # a figure of the networks trained on the canonical data (docs/threat-model.md). The
        # quick run's models, trained on the embedded subset, have smaller score margins;
        # here the noise must only leave the service usable.
        agreement = run.get("agreement_with_plain")
        if agreement is not None:
            floor = 0.999 if results.get("data_source") == "canonical" else 0.99
            check(agreement >= floor,
                  f"countermeasures.{name}: agreement with plaintext >= {floor:.1%} under the default release ({agreement})")
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        return 1
    print("results.json: every check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
