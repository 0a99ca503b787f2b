"""Benchmark of the face engine: unlinkability, latency, duplicate search.

    python scripts/bench_face.py --pairs ../shared/data/lfw-dev [--json]
        [--stages unlinkability,operator,latency,dedup] [--dedup-sizes 100000,1000000]
        [--frames 60] [--seed 1] [--compare-single-pass] [--operator-synthetic-people 2000]

``--pairs DIR`` is a directory in the layout of ``../shared/data/lfw-dev`` (read by
``lfw_eval.read_pairs``). Verification accuracy is measured by
``scripts/bench_face_accuracy.py`` (held out, with the in-sample figures labelled); this bench
uses the LFW embeddings (``lfw_embeddings``, cached outside the repository) for:

* unlinkability on real faces: the same image enrolled at two institutions, cosine of
  the two transformed templates vs. different people's, and the D_sys measure;
* ``operator``: what one org's operator, holding exactly its own keys, can link of a
  holder's references at two institutions (D<->sys per access level, on LFW people with two
  images and on a larger synthetic population; ``operator_linkability``);
* latency p50/p95 of detection, embedding and a full verification (JPEG decode + detect
  + quality gate + embed + protected match) on 640x480 frames made by scaling LFW images
  to 400x400 and padding them;
* duplicate search p50/p95 at each ``--dedup-sizes`` on face-like synthetic embeddings
  fitted to the dev embeddings, with planted duplicates (recall) and false candidates per
  search at the FAR 1e-4 threshold; encrypted snapshot write/open time at each size;
* peak memory (``ru_maxrss``);
* with ``--compare-single-pass``: the single-crop embedding's latency beside the
  flip-averaged one's;
* with ``--latency-only --paired-latency``: full verifications of the same frames in turn
  by the flip-averaged engine, the single-crop embedder and the unmodified single-crop
  session (the default before flip averaging), with per-frame median ratios: the fair
  comparison on a shared machine.

``--stages`` runs some of the four stages (default all but ``operator``; the latency, dedup
and operator stages take minutes, the unlinkability stage seconds once the embeddings are
cached). With ``--json``
the last line printed is one JSON object holding every figure; ``scripts/bench_meta.py``
wraps the run to record its machine and load (docs/figures/README.md).
No image, embedding or key is written anywhere; only statistics are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort
from insightface.model_zoo import get_model

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lfw_embeddings import default_cache_dir, load_or_extract
from lfw_eval import Fold, identity, read_pairs
from operator_linkability import operator_unlinkability

from face_engine.dedup import DedupIndex, FaceLikeDistribution, mated_sample
from face_engine.detect import YuNetDetector
from face_engine.embed import SFaceEmbedder, l2_normalise
from face_engine.engine import FaceEngine
from face_engine.errors import FaceError
from face_engine.image_io import encode_jpeg
from face_engine.models import ModelPaths, ensure_models
from face_engine.protect import (
    ProtectedReference,
    TemplateProtector,
    linkability_dsys,
)
from face_engine.protect.service import ProtectedFaceVerifier
from face_engine.verify import load_operating_points

STAGES = ("unlinkability", "operator", "latency", "dedup")
DEFAULT_STAGES = ("unlinkability", "latency", "dedup")  # the operator stage: on request


# --- data --------------------------------------------------------------------------------
def read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit(f"cannot read {path.name}")
    return np.asarray(image)


# --- stages ------------------------------------------------------------------------------
def percentiles_ms(samples: list[float]) -> dict[str, float]:
    arr = np.asarray(samples) * 1e3
    return {"p50_ms": round(float(np.percentile(arr, 50)), 2),
            "p95_ms": round(float(np.percentile(arr, 95)), 2), "n": len(samples)}


def cross_institution_templates(emb: dict[str, np.ndarray], chosen: list[str],
                                protector: TemplateProtector) -> tuple[np.ndarray, np.ndarray]:
    """Each chosen image enrolled as one holder at HospitalMSP and at SchoolMSP; the two
    decrypted transformed templates (what an attacker with the KEK but not the transform
    key holds)."""
    hosp: list[np.ndarray] = []
    school: list[np.ndarray] = []
    for i, r in enumerate(chosen):
        for inst, out in (("HospitalMSP", hosp), ("SchoolMSP", school)):
            ref = protector.enrol(emb[r], f"holder-{i}", inst)
            out.append(protector.decrypt_transformed(ref))
    return np.array(hosp), np.array(school)


def unlinkability(emb: dict[str, np.ndarray], protector: TemplateProtector,
                  limit: int = 600, seed: int = 1, key_draws: int = 10,
                  null_draws: int = 200, null_pairings: int = 10) -> dict[str, Any]:
    """The same person enrolled at two institutions against different people: cosines of
    the transformed templates, D_sys for ``protector`` and for ``key_draws - 1`` more fresh
    key pairs (D_sys moves with the keys), and the D_sys that two samples of this size
    drawn from one distribution give (the floor a measured D_sys is read against)."""
    by_id: dict[str, str] = {}
    for r in sorted(emb):  # one image per person, so "different people" is exact
        by_id.setdefault(identity(r), r)
    chosen = list(by_id.values())[:limit]
    n = len(chosen)
    bins = max(5, min(30, n // 20))  # few bins for few samples: less upward bias
    h, s = cross_institution_templates(emb, chosen, protector)
    raw = np.array([emb[r] for r in chosen], dtype=np.float64)
    mated = np.sum(h * s, axis=1)
    non_mated = np.sum(h * np.roll(s, 1, axis=0), axis=1)
    raw_non_mated = np.sum(raw * np.roll(raw, 1, axis=0), axis=1)
    d_sys = [linkability_dsys(mated, non_mated, bins=bins)]
    for _ in range(key_draws - 1):
        h2, s2 = cross_institution_templates(
            emb, chosen, TemplateProtector(os.urandom(32), os.urandom(32)))
        d_sys.append(linkability_dsys(np.sum(h2 * s2, axis=1),
                                      np.sum(h2 * np.roll(s2, 1, axis=0), axis=1), bins=bins))

    # D_sys of a finite sample is never 0: two samples of n drawn from ONE distribution
    # (different people's protected scores: more pairings of the same templates) show the
    # histogram-noise floor.
    pool = np.concatenate([np.sum(h * np.roll(s, k, axis=0), axis=1)
                           for k in range(1, null_pairings + 1)])
    rng = np.random.default_rng(seed)
    null = []
    for _ in range(null_draws):
        drawn = rng.permutation(pool)
        null.append(linkability_dsys(drawn[:n], drawn[n:2 * n], bins=bins))

    def stats(x: np.ndarray) -> dict[str, float]:
        return {"mean": round(float(x.mean()), 4), "std": round(float(x.std()), 4),
                "max": round(float(x.max()), 4)}

    def spread(x: list[float]) -> dict[str, float]:
        return {q: round(float(np.percentile(x, v)), 4)
                for q, v in (("min", 0), ("p5", 5), ("median", 50), ("p95", 95),
                             ("max", 100))}

    return {"people": n, "cross_institution_same_person": stats(mated),
            "cross_institution_different_people": stats(non_mated),
            "raw_domain_different_people": stats(raw_non_mated),
            "raw_domain_same_image": 1.0,
            "d_sys": round(d_sys[0], 4),
            "d_sys_key_draws": {"draws": key_draws, **spread(d_sys)},
            "d_sys_raw_domain": round(linkability_dsys(np.ones_like(raw_non_mated),
                                                       raw_non_mated, bins=bins), 4),
            "d_sys_bins": bins,
            "d_sys_same_distribution": {"draws": null_draws,
                                        "different_people_pairings": len(pool),
                                        **spread(null)}}


def make_frame(image: np.ndarray) -> np.ndarray:
    """640x480 frame: the 250x250 LFW image scaled to 400x400, centred on a grey canvas."""
    scaled = cv2.resize(image, (400, 400), interpolation=cv2.INTER_LINEAR)
    frame = np.full((480, 640, 3), 127, dtype=np.uint8)
    frame[40:440, 120:520] = scaled
    return frame


def latency(images_dir: Path, folds: list[Fold],
            engine: FaceEngine, detector: YuNetDetector, protector: TemplateProtector,
            operating_point: str, frames: int, single: SFaceEmbedder | None = None,
            ) -> dict[str, Any]:
    verifier = ProtectedFaceVerifier(engine, protector)
    pairs = [p for f in folds for p in f.genuine]
    det_t: list[float] = []
    emb_t: list[float] = []
    single_t: list[float] = []
    full_t: list[float] = []
    quality_refused, matches, tried = 0, 0, 0
    warm = make_frame(read_image(images_dir / pairs[0][0]))
    for _ in range(3):  # first inferences allocate and tune; not what a user waits for
        detector.detect(warm)
        engine.embed_face(engine.analyze_image(warm), require_quality=False)
    for i, (ref_rel, probe_rel) in enumerate(pairs):
        if len(full_t) >= frames:
            break
        tried += 1
        ref_img = read_image(images_dir / ref_rel)
        probe_img = read_image(images_dir / probe_rel)
        try:
            reference = protector.enrol(engine.embed(encode_jpeg(make_frame(ref_img))),
                                        f"lat-{i}", "HospitalMSP")
        except FaceError:
            quality_refused += 1
            continue
        frame = make_frame(probe_img)
        jpeg = encode_jpeg(frame)
        t0 = time.perf_counter()
        detector.detect(frame)
        det_t.append(time.perf_counter() - t0)
        try:
            analysis = engine.analyze_image(frame)
            t0 = time.perf_counter()
            engine.embed_face(analysis, require_quality=False)
            emb_t.append(time.perf_counter() - t0)
            if single is not None:  # same crop, right after: the same machine conditions
                t0 = time.perf_counter()
                single.embed_aligned(analysis.aligned)
                single_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            # the gateway's call: decode + detect + quality gate + embed + protected match
            match = verifier.verify(reference, jpeg, operating_point_name=operating_point)
            full_t.append(time.perf_counter() - t0)
            matches += int(match)
        except FaceError:
            quality_refused += 1
    out: dict[str, Any] = {"frame": "640x480 JPEG", "detect": percentiles_ms(det_t),
            "embed": percentiles_ms(emb_t), "full_verify": percentiles_ms(full_t),
            "pairs_tried": tried, "refused_by_gate": quality_refused,
            "genuine_matched": matches}
    if single is not None:
        out["embed_single_pass"] = percentiles_ms(single_t)
    return out


def dedup_bench(sizes: list[int], model: FaceLikeDistribution, real: np.ndarray,
                threshold: float, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    kek, transform = os.urandom(32), os.urandom(32)
    # Validate the synthetic model against the real impostor distribution.
    synth = model.sample(4000, rng)
    cos = (synth[:2000] @ synth[2000:].T).ravel()
    results: dict[str, Any] = {"threshold": threshold, "synthetic_check": {
        "synthetic_impostor_mean": round(float(cos.mean()), 4),
        "synthetic_impostor_std": round(float(cos.std()), 4),
        "synthetic_q_1e-3": round(float(np.quantile(cos, 1 - 1e-3)), 4),
        "synthetic_q_1e-4": round(float(np.quantile(cos, 1 - 1e-4)), 4)}, "sizes": {}}
    for size in sizes:
        planted = min(50, size // 10)
        base = model.sample(size, rng)
        ids = [f"P{i:08d}" for i in range(size)]
        with tempfile.TemporaryDirectory(prefix="mip-dedup-bench-") as tmp:
            index = DedupIndex.open(Path(tmp) / "idx", kek, transform,
                                    compact_every=size + planted + 10)
            t0 = time.perf_counter()
            index.add_many(ids, base)
            add_s = time.perf_counter() - t0
            # planted duplicates: second "photos" of enrolled people at genuine-like cosines
            sources = rng.choice(size, planted, replace=False)
            dupes = mated_sample(base[sources], 0.55, rng)
            del base
            t0 = time.perf_counter()
            index.compact()
            write_s = time.perf_counter() - t0
            on_disk = sum(p.stat().st_size for p in (Path(tmp) / "idx").iterdir())
            index.close()
            t0 = time.perf_counter()
            index = DedupIndex.open(Path(tmp) / "idx", kek, transform)
            open_s = time.perf_counter() - t0
            times, hits_real, top_false, found = [], [], [], 0
            for k, src in enumerate(sources):
                t0 = time.perf_counter()
                hits = index.search(dupes[k], threshold)
                times.append(time.perf_counter() - t0)
                found += int(ids[src] in {h[0] for h in hits})
            for probe in real[:100]:  # real faces that are not enrolled: false candidates
                t0 = time.perf_counter()
                hits = index.search(probe, threshold)
                times.append(time.perf_counter() - t0)
                hits_real.append(len(hits))
                if hits:
                    top_false.append(hits[0][1])
            index.close()
        results["sizes"][str(size)] = {
            "search": percentiles_ms(times), "planted_duplicates": planted,
            "planted_found": found, "false_candidates_per_search_mean":
                round(float(np.mean(hits_real)), 2),
            "searches_with_false_candidates": round(float(np.mean(np.array(hits_real) > 0)),
                                                    3),
            # best-scoring wrong passport per search (only searches that had one): the
            # threshold a dedup without false candidates would need at this size
            "top_false_score_median": round(float(np.median(top_false)), 4)
            if top_false else None,
            "top_false_score_max": round(float(np.max(top_false)), 4) if top_false else None,
            "add_s": round(add_s, 2), "snapshot_write_s": round(write_s, 2),
            "open_s": round(open_s, 2), "bytes_on_disk": on_disk,
            "load_average_1min": round(os.getloadavg()[0], 2)}
    return results


# --- main --------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=Path, required=True)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--dedup-sizes", default="100000,1000000")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--operator-synthetic-people", type=int, default=2000,
                        help="operator stage: size of the synthetic population beside LFW's "
                             "(0: LFW only)")
    parser.add_argument("--operator-key-draws", type=int, default=5,
                        help="operator stage: fresh draws of both orgs' keys")
    parser.add_argument("--stages", default=",".join(DEFAULT_STAGES),
                        help="comma-separated stages to run, of " + ", ".join(STAGES)
                        + " (default " + ",".join(DEFAULT_STAGES) + "; e.g. `unlinkability` "
                        "alone takes seconds with the embedding cache warm)")
    parser.add_argument("--latency-only", action="store_true",
                        help="only the latency stage (for re-measuring on a quieter machine)")
    parser.add_argument("--paired-latency", action="store_true",
                        help="with --latency-only: full verify of the same frames in turn by "
                             "the flip-averaged, single-crop and unmodified-session engines")
    parser.add_argument("--compare-single-pass", action="store_true",
                        help="also time the single-pass embedding (crop without mirror)")
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir(),
                        help="LFW embedding cache (lfw_embeddings)")
    parser.add_argument("--no-cache", action="store_true")
    args = parser.parse_args(argv)
    stages = [x.strip() for x in args.stages.split(",") if x.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown or not stages:
        parser.error(f"--stages: unknown {unknown} (known: {', '.join(STAGES)})" if unknown
                     else "--stages: none given")

    started = time.perf_counter()
    folds = read_pairs(args.pairs / "pairs.txt")
    images_dir = args.pairs / "images"
    rels = sorted(frozenset().union(*(f.images for f in folds)))
    models = ensure_models()
    detector = YuNetDetector(models.detector)
    engine = FaceEngine(models)
    protector = TemplateProtector(os.urandom(32), os.urandom(32))
    points = {name: p.threshold for name, p in load_operating_points().items()}

    single = SFaceEmbedder(models.recognizer, flip_average=False) \
        if args.compare_single_pass else None
    if args.latency_only:
        return latency_only(args, images_dir, folds, engine, detector, protector, single)
    lfw = load_or_extract(images_dir, rels, None if args.no_cache else args.cache_dir)
    flip = lfw.vectors["flip_average"]
    emb = {r: flip[k] for k, r in enumerate(lfw.rels) if lfw.found[k]}
    report: dict[str, Any] = {"pairs_dir": str(args.pairs),
                              "extraction": {**lfw.summary(), "from_cache": lfw.from_cache},
                              "operating_points": points,
                              "accuracy": "scripts/bench_face_accuracy.py",
                              "stages": stages}
    if "unlinkability" in stages:
        report["unlinkability"] = unlinkability(emb, protector, seed=args.seed)
    if "operator" in stages:
        report["operator"] = operator_unlinkability(
            emb, identity, args.operator_synthetic_people, key_draws=args.operator_key_draws,
            seed=args.seed)
    if "latency" in stages:
        load_before = os.getloadavg()[0]
        report["latency"] = latency(images_dir, folds, engine, detector, protector,
                                    "far_1e-3", args.frames, single)
        # other processes on the machine inflate latencies: record how busy it was
        report["latency"]["load_average_1min"] = [round(load_before, 2),
                                                  round(os.getloadavg()[0], 2)]
    report["cpu_count"] = os.cpu_count()
    sizes = [int(s) for s in args.dedup_sizes.split(",") if s.strip() and int(s) > 0]
    if sizes and "dedup" in stages:
        real = np.stack([emb[r] for r in sorted(emb)])
        model = FaceLikeDistribution.fit(real) if len(real) > 128 else \
            FaceLikeDistribution.parametric(128, np.random.default_rng(args.seed))
        report["dedup"] = dedup_bench(sizes, model, real, points["far_1e-4"], args.seed)
    report["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    report["wall_s"] = round(time.perf_counter() - started, 1)
    print_report(report)
    if args.json:
        print(json.dumps(report, sort_keys=True))
    return 0


class _UnmodifiedSFace:
    """The single-crop embedding through the unmodified model file's session (insightface
    ``ArcFaceONNX``): the engine's embedding before flip averaging, for paired timing."""

    def __init__(self, model_path: Path) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 2
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._model = get_model(str(model_path), providers=["CPUExecutionProvider"],
                                sess_options=options)

    def embed_aligned(self, crop: np.ndarray) -> np.ndarray:
        return l2_normalise(self._model.get_feat(crop))


def paired_latency(images_dir: Path, folds: list[Fold],
                   models: ModelPaths, protector: TemplateProtector, frames: int,
                   rounds: int = 3) -> dict[str, Any]:
    """Full protected verify of the same frames, in turn, by the flip-averaged engine, the
    single-crop embedder and the unmodified single-crop session: on a shared machine only
    such paired figures compare the paths fairly."""
    engines = {"flip_average": FaceEngine(models), "single_pass": FaceEngine(models),
               "single_pass_unmodified_session": FaceEngine(models)}
    engines["single_pass"]._embedder = SFaceEmbedder(models.recognizer, flip_average=False)
    engines["single_pass_unmodified_session"]._embedder = \
        _UnmodifiedSFace(models.recognizer)  # type: ignore[assignment]
    verifiers = {k: ProtectedFaceVerifier(e, protector) for k, e in engines.items()}
    jobs: list[tuple[dict[str, ProtectedReference], bytes]] = []
    for i, (ref_rel, probe_rel) in enumerate(p for f in folds for p in f.genuine):
        if len(jobs) >= frames:
            break
        try:
            ref_jpeg = encode_jpeg(make_frame(read_image(images_dir / ref_rel)))
            refs = {k: protector.enrol(e.embed(ref_jpeg), f"pair-{k}-{i}", "HospitalMSP")
                    for k, e in engines.items()}
            probe = encode_jpeg(make_frame(read_image(images_dir / probe_rel)))
            engines["flip_average"].embed(probe)  # quality gate: skip refused frames
        except FaceError:
            continue
        jobs.append((refs, probe))
    names = list(engines)
    times: dict[str, list[float]] = {k: [] for k in names}
    for k in names:  # first inferences allocate and tune
        verifiers[k].verify(jobs[0][0][k], jobs[0][1])
    load_before = os.getloadavg()[0]
    for r in range(rounds):
        order = names[r % 3:] + names[:r % 3]
        for refs, probe in jobs:
            for k in order:
                t0 = time.perf_counter()
                verifiers[k].verify(refs[k], probe)
                times[k].append(time.perf_counter() - t0)
    base = np.array(times["single_pass_unmodified_session"])
    out: dict[str, Any] = {"frames": len(jobs), "rounds": rounds,
                           "load_average_1min": [round(load_before, 2),
                                                 round(os.getloadavg()[0], 2)]}
    for k in names:
        t = np.array(times[k])
        out[k] = {**percentiles_ms(times[k]), "min_ms": round(float(t.min()) * 1000, 2),
                  "median_ratio_to_unmodified": round(float(np.median(t / base)), 3),
                  "median_difference_ms": round(float(np.median(t - base)) * 1000, 2)}
    return out


def latency_only(args: argparse.Namespace, images_dir: Path,
                 folds: list[Fold], engine: FaceEngine,
                 detector: YuNetDetector, protector: TemplateProtector,
                 single: SFaceEmbedder | None) -> int:
    load_before = os.getloadavg()[0]
    lat = latency(images_dir, folds, engine, detector, protector, "far_1e-3", args.frames,
                  single)
    lat["load_average_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    report: dict[str, Any] = {"latency": lat, "cpu_count": os.cpu_count()}
    print(f"latency 640x480: {json.dumps(lat)} on {os.cpu_count()} CPUs")
    if args.paired_latency:
        report["paired_latency"] = paired_latency(images_dir, folds, engine.model_paths,
                                                  protector, args.frames)
        print(f"paired full verify: {json.dumps(report['paired_latency'])}")
    if args.json:
        print(json.dumps(report, sort_keys=True))
    return 0


def print_report(r: dict[str, Any]) -> None:
    print(f"images {r['extraction']}; accuracy: see {r['accuracy']}")
    if "unlinkability" in r:
        u = r["unlinkability"]
        print(f"unlinkability ({u['people']} people): same person across institutions "
              f"{u['cross_institution_same_person']}, different people "
              f"{u['cross_institution_different_people']}, D_sys {u['d_sys']} "
              f"(over key draws {u['d_sys_key_draws']}; two samples of one distribution: "
              f"{u['d_sys_same_distribution']}; raw domain {u['d_sys_raw_domain']})")
    if "operator" in r:
        o = r["operator"]
        for name, p in o["populations"].items():
            print(f"operator linkability, {name} ({p['mated_pairs']} mated, "
                  f"{p['non_mated_pairs']} non-mated pairs, {p['bins']} bins), D<->sys "
                  f"median over {o['key_draws']} key draws (goal <= {o['goal']}):")
            for level, x in p["levels"].items():
                print(f"  {level}: {x['d_sys']} ({x['best_score']})")
    if "latency" in r:
        lat = r["latency"]
        print(f"latency 640x480: detect {lat['detect']}, embed {lat['embed']}, "
              f"full verify {lat['full_verify']}"
              + (f", single-pass embed {lat['embed_single_pass']}"
                 if "embed_single_pass" in lat else "")
              + f" (load average {lat['load_average_1min']} on {r['cpu_count']} CPUs)")
    if "dedup" in r:
        d = r["dedup"]
        print(f"dedup synthetic check: {d['synthetic_check']}")
        for size, s in d["sizes"].items():
            print(f"  {size} refs: search {s['search']}, planted found "
                  f"{s['planted_found']}/{s['planted_duplicates']}, false candidates/search "
                  f"{s['false_candidates_per_search_mean']}, snapshot write "
                  f"{s['snapshot_write_s']} s, open {s['open_s']} s, {s['bytes_on_disk']} B")
    print(f"peak RSS {r['peak_rss_mib']} MiB, wall {r['wall_s']} s")


if __name__ == "__main__":
    raise SystemExit(main())
