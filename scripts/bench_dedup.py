"""Identification error rates of duplicate screening: FPIR and FNIR at gallery sizes N.

    python scripts/bench_dedup.py --pairs ../shared/data/lfw-dev [--json]
        [--sizes 10000,100000,1000000] [--probes 2000] [--seed 1] [--write-calibration]

ISO/IEC 19795-1 terms (``face_engine.dedup.identification``). The screening of an enrolment
is a search of a gallery of N references returning every reference at or above one cosine
threshold t, so:

* FPIR(N) = share of searches by people NOT in the gallery that return a candidate. The
  gallery is N face-like synthetic references (``FaceLikeDistribution`` fitted to the LFW dev
  embeddings: LFW holds 2,320 images, not a million); the searches are ``--probes`` synthetic
  people plus every real LFW dev image (real faces against the synthetic gallery), reported
  separately, the larger one counted. The galleries of the sizes asked are prefixes of one
  generated gallery, so the searches run once.
* FNIR = share of searches by enrolled people whose own reference scores below t. It does
  not depend on N (no rank limit). Reported separately for
  - ``in_the_wild``: every same-person pair of LFW dev images, one image each (news photos:
    any pose, light, age, expression), and the 900 official genuine pairs;
  - ``multi_frame``: LFW people with at least 2k quality-passing images, the enrolment
    template made of k of them (``template``: normalised mean) and the search template of k
    others. A stand-in for desk captures (several frames each time); LFW's frames are
    different photos, so averaging them removes more noise than averaging the frames of one
    liveness capture would: read the gain as an upper bound.
* ``identification.threshold``: the lowest t with FPIR(1M) <= 1 % (``--fpir-target``) over
  both kinds of non-mated searches; ``--write-calibration`` stores it in
  ``face_engine/calibration.json`` under ``identification`` (the 1:1 operating points stay).
  Without 1M among the sizes, the stored threshold is used and reported.
* ``multi_frame_gain``: FNIR at the same FPIR for single images vs k-frame templates. A
  gallery of templates has its own non-mated distribution (templates of different people can
  be closer than their photos are), so its threshold is calibrated on a second synthetic model
  fitted to LFW k-image templates of different people, at N = the largest size.

The JSON's last line has, under a key named by each N (e.g. ``"1000000"``), ``fpir`` (the
larger of the synthetic and the real-probe FPIR) and ``fnir`` (in-the-wild, single image)
at the identification threshold, with their parts beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lfw_embeddings import default_cache_dir, load_or_extract
from lfw_eval import identity, read_pairs

from face_engine.dedup import FaceLikeDistribution
from face_engine.dedup.identification import (
    best_scores,
    fnir,
    fpir,
    template,
    threshold_for_fpir,
)
from face_engine.verify import CALIBRATION_PATH, identification_threshold, operating_point

BATCH = 100_000
KEY = "identification"


def gallery_best(model: FaceLikeDistribution, sizes: list[int], probes: dict[str, np.ndarray],
                 rng: np.random.Generator) -> dict[int, dict[str, np.ndarray]]:
    """Best score of every probe set against galleries of each size (nested prefixes)."""
    best = {name: np.full(len(p), -np.inf) for name, p in probes.items()}
    out: dict[int, dict[str, np.ndarray]] = {}
    done = 0
    for size in sorted(sizes):
        while done < size:
            batch = model.sample(min(BATCH, size - done), rng)
            for name, p in probes.items():
                best[name] = np.maximum(best[name], best_scores(p, [batch]))
            done += len(batch)
        out[size] = {name: b.copy() for name, b in best.items()}
    return out


def split_templates(vectors: np.ndarray, people: dict[str, list[int]], k: int,
                    ) -> tuple[np.ndarray, np.ndarray]:
    """For each person with >= 2k images: template of their first k and of their next k."""
    a, b = [], []
    for rows in people.values():
        if len(rows) >= 2 * k:
            a.append(template(vectors[rows[:k]]))
            b.append(template(vectors[rows[k:2 * k]]))
    return np.array(a), np.array(b)


def impostor_stats(x: np.ndarray) -> dict[str, float]:
    s = x @ x.T
    v = s[np.triu_indices(len(x), 1)]
    return {"pairs": int(v.size), "mean": round(float(v.mean()), 4),
            "std": round(float(v.std()), 4),
            "q_1e-3": round(float(np.quantile(v, 1 - 1e-3)), 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=Path, required=True)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--probes", type=int, default=2000)
    parser.add_argument("--fpir-target", type=float, default=0.01)
    parser.add_argument("--frames", default="2,3", help="k values of the multi-frame templates")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--write-calibration", action="store_true")
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    sizes = sorted(int(s) for s in args.sizes.split(",") if s.strip())
    ks = [int(k) for k in args.frames.split(",") if k.strip()]

    folds = read_pairs(args.pairs / "pairs.txt")
    rels = sorted(frozenset().union(*(f.images for f in folds)))
    lfw = load_or_extract(args.pairs / "images", rels, args.cache_dir)
    flip = lfw.vectors["flip_average"]
    found = np.flatnonzero(lfw.found)
    real = flip[found]
    ids = np.array([identity(lfw.rels[i]) for i in found])
    # a smoke run on a few images cannot fit a 128-d covariance: the data-free model then
    model = FaceLikeDistribution.fit(real) if len(real) > real.shape[1] else \
        FaceLikeDistribution.parametric(real.shape[1], rng)

    # --- non-mated searches: FPIR at each N ----------------------------------------------
    probes = {"synthetic": model.sample(args.probes, rng), "lfw_real": real}
    t0 = time.perf_counter()
    best = gallery_best(model, sizes, probes, rng)
    search_s = time.perf_counter() - t0
    largest = sizes[-1]
    if largest == 1_000_000 or args.write_calibration:
        pooled = np.concatenate([best[largest]["synthetic"], best[largest]["lfw_real"]])
        # the larger of the two thresholds: both kinds of search meet the target
        threshold = max(threshold_for_fpir(best[largest][n], args.fpir_target)
                        for n in ("synthetic", "lfw_real"))
        assert fpir(pooled, threshold) <= args.fpir_target
        threshold_source = f"measured here at N = {largest}"
    else:
        threshold = identification_threshold()
        threshold_source = "stored (face_engine/calibration.json)"

    # --- mated searches: FNIR ------------------------------------------------------------
    s = real @ real.T
    iu = np.triu_indices(len(real), 1)
    same = ids[iu[0]] == ids[iu[1]]
    genuine = s[iu][same]
    rel_index = {lfw.rels[i]: j for j, i in enumerate(found)}
    official = np.array([s[rel_index[a], rel_index[b]] for f in folds for a, b in f.genuine
                         if a in rel_index and b in rel_index])
    in_the_wild = {"same_person_pairs": int(genuine.size),
                   "fnir": round(fnir(genuine, threshold), 4),
                   "official_genuine_pairs": int(official.size),
                   "fnir_official_pairs": round(fnir(official, threshold), 4)}

    passed = lfw.quality_passed[found]
    people: dict[str, list[int]] = defaultdict(list)
    for j in np.flatnonzero(passed):
        people[str(ids[j])].append(int(j))
    multi: dict[str, Any] = {}
    for k in [1, *ks]:
        a, b = split_templates(real, people, k)
        if len(a) == 0:
            continue
        mated = np.sum(a * b, axis=1)
        multi[f"k{k}"] = {"people": len(a), "fnir": round(fnir(mated, threshold), 4),
                          "mated_median": round(float(np.median(mated)), 4)}

    # --- multi-frame gain at a fixed FPIR (same people, own gallery model per k) ----------
    gain: dict[str, Any] = {"fpir_target": args.fpir_target, "gallery_size": largest,
                            "people_pool": "LFW dev people with >= 2k quality-passing images"}
    k_max = max(ks) if ks else 1
    for k in [1, *ks]:
        # the same people for every k: those with >= 2 k_max images
        pool = {p: r for p, r in people.items() if len(r) >= 2 * k_max}
        a, b = split_templates(real, pool, k)
        if len(a) == 0:
            continue
        mated = np.sum(a * b, axis=1)
        # non-mated templates: one k-template per person with >= k images (all people)
        non_mated = np.array([template(real[r[:k]]) for r in people.values() if len(r) >= k])
        if k == 1:
            t_k = threshold
        else:
            tmodel = FaceLikeDistribution.fit(non_mated) if len(non_mated) > 128 else model
            tprobes = {"synthetic": tmodel.sample(args.probes, rng)}
            tbest = gallery_best(tmodel, [largest], tprobes, rng)[largest]["synthetic"]
            t_k = threshold_for_fpir(tbest, args.fpir_target)
            check = tprobes["synthetic"][: args.probes // 2] @ tprobes["synthetic"][
                args.probes // 2:].T
            gain[f"k{k}_model_check"] = {"synthetic_mean": round(float(check.mean()), 4),
                                         "synthetic_std": round(float(check.std()), 4)}
        gain[f"k{k}"] = {"people": len(a), "threshold": t_k,
                         "fnir": round(fnir(mated, t_k), 4),
                         "non_mated_templates": impostor_stats(non_mated)}

    report: dict[str, Any] = {
        "pairs_dir": str(args.pairs), "probes": {n: len(p) for n, p in probes.items()},
        KEY: {"threshold": threshold, "fpir_target": args.fpir_target,
              "at_gallery_size": largest, "source": threshold_source},
        "verification_far_1e-4_threshold": operating_point("far_1e-4").threshold,
        "lfw_impostor": {"pairs": int((~same).sum()),
                         "mean": round(float(s[iu][~same].mean()), 4),
                         "std": round(float(s[iu][~same].std()), 4)},
        "fnir_in_the_wild": in_the_wild, "fnir_multi_frame_at_single_threshold": multi,
        "multi_frame_gain": gain, "search_s_all_sizes": round(search_s, 1)}
    far4 = operating_point("far_1e-4").threshold
    for size in sizes:
        syn, lr = best[size]["synthetic"], best[size]["lfw_real"]
        report[str(size)] = {
            "fpir": round(max(fpir(syn, threshold), fpir(lr, threshold)), 4),
            "fpir_synthetic": round(fpir(syn, threshold), 4),
            "fpir_lfw_real_probes": round(fpir(lr, threshold), 4),
            "fnir": in_the_wild["fnir"],
            # k-frame templates at the threshold of a k-template gallery of the largest N
            "fnir_multi_frame": {k: v["fnir"] for k, v in gain.items()
                                 if isinstance(v, dict) and "fnir" in v},
            # what the 1:1 threshold did before: nearly every search had a candidate
            "fpir_at_far_1e-4_threshold": round(fpir(np.concatenate([syn, lr]), far4), 4),
            "threshold_for_fpir_target_at_this_n": max(
                threshold_for_fpir(syn, args.fpir_target),
                threshold_for_fpir(lr, args.fpir_target)),
            "best_non_mated_median": round(float(np.median(np.concatenate([syn, lr]))), 4)}
    report["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    report["cpu_count"] = os.cpu_count()
    report["wall_s"] = round(time.perf_counter() - started, 1)

    if args.write_calibration:
        doc = json.loads(CALIBRATION_PATH.read_text(encoding="utf-8"))
        doc[KEY] = {
            "threshold": threshold, "fpir_target": args.fpir_target, "gallery_size": largest,
            "generated_by": "scripts/bench_dedup.py --write-calibration",
            "used_for": "1:N duplicate screening at enrolment (the 1:1 operating points "
                        "above stay for verification)",
            "method": "lowest cosine t (rounded up to 6 decimals) with FPIR(N) <= target, "
                      "FPIR = share of non-mated searches whose best score over N face-like "
                      "synthetic references (FaceLikeDistribution fitted to the LFW dev "
                      "embeddings) is >= t; the larger t of two search sets: synthetic "
                      "people and every real LFW dev image",
            "searches": {n: len(p) for n, p in probes.items()}, "seed": args.seed,
            "fnir_in_the_wild": in_the_wild["fnir"],
            "template_gallery_thresholds": {k: v["threshold"] for k, v in gain.items()
                                            if isinstance(v, dict) and "threshold" in v}}
        CALIBRATION_PATH.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print_report(report, sizes)
    if args.json:
        print(json.dumps(report, sort_keys=True))
    return 0


def print_report(r: dict[str, Any], sizes: list[int]) -> None:
    ident = r[KEY]
    print(f"identification threshold {ident['threshold']} ({ident['source']}); "
          f"1:1 FAR 1e-4 threshold {r['verification_far_1e-4_threshold']}")
    for size in sizes:
        row = r[str(size)]
        print(f"N={size:>8}: FPIR {row['fpir']:.4f} (synthetic {row['fpir_synthetic']:.4f}, "
              f"real probes {row['fpir_lfw_real_probes']:.4f}); FPIR at the 1:1 threshold "
              f"{row['fpir_at_far_1e-4_threshold']:.4f}")
    print(f"FNIR in the wild {r['fnir_in_the_wild']}")
    print(f"FNIR multi-frame (single-image threshold) {r['fnir_multi_frame_at_single_threshold']}")
    print(f"multi-frame gain {r['multi_frame_gain']}")


if __name__ == "__main__":
    raise SystemExit(main())
