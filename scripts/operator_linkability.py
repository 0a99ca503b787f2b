"""Can one org's operator link a holder's face references at two institutions? (issue #15)

ISO/IEC 30136's global linkability D<->sys (Gomez-Barrero et al.;
``face_engine.protect.linkability_dsys``) of references that one dishonest org's operator can
compare. The attacker is the operator of org A's gateway (HospitalMSP). It holds **exactly
A's keys** (its KEK ``face`` and its transform key ``face-transform``) and A's database, so it
opens A's references completely: it decrypts each template and undoes its rotation, recovering
the embedding (the run records the recovery's largest error). Of org B (SchoolMSP) it has
only what reaches it:

* ``operator`` (the headline; one org's operator, nothing leaked): B's references' ledger
  commitments (``face_commitment`` of B's passports and accounts; B's references themselves
  stay in B's database). Scores it can compute: bit agreement of A's commitment and B's, and
  agreement of B's commitment bits with the sign bits of A's recovered embedding.

Rows that give the operator more than it holds, to show where the protection comes from:

* ``plus_b_database``: B's stored rows as well (B's database stolen, no B key). Scores: byte
  agreement of A's and B's template ciphertexts, correlation of B's ciphertext bytes with the
  bytes of A's recovered embedding, bit agreement of the two holder pseudonyms; with the
  commitment scores.
* ``plus_b_database_and_kek``: B's KEK leaked too (not B's transform key), so B's templates
  t = R x are in the clear, each under its own rotation. Scores: cosine of A's embedding with
  t; correlation of sorted coordinates (unchanged by coordinate permutations); a Gram profile
  (each reference's inner products with the other references of its store, as quantiles:
  unchanged by any rotation the whole store shares); an anchor profile (inner products with
  the references of ``ANCHORS`` holders the attacker knows at both orgs).
* ``one_key_set``: both institutions' references under ONE key set (the all-orgs gateway
  before issue #15, or two orgs that share keys), both stores reaching the operator: its own
  keys open B's references too and it compares embeddings with the matcher's cosine. This is
  the row that shows the measurement can fail: it links.
* ``shared_rotation_contrast``: a design this project does not use, one rotation per
  institution instead of one per reference, attacked with the invariant profiles.

The attacker's scores at each level are every score computable from what it holds there (it
tries its own keys on everything that reaches it); the level's D<->sys is that of its best
score (highest median over key draws), which selection biases upward.

Mated pairs are one person's references at A and at B, made with each org's own keys from
different captures; non-mated pairs are different people's. Populations: LFW dev people with
two images or more (A's store holds the first, B's the second) and a larger synthetic
population (``FaceLikeDistribution`` fitted to the LFW embeddings, second captures at cosines
drawn from LFW's same-person cosines), whose size brings the histogram-noise floor of D<->sys
lower. D<->sys of a finite sample is never 0: beside every score, two samples of the measured
sizes drawn from ONE distribution (different people's scores) give the floor.

Nothing here is written anywhere; only statistics leave the functions.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from face_engine.dedup import FaceLikeDistribution, mated_sample
from face_engine.protect import ProtectedReference, TemplateProtector, linkability_dsys
from face_engine.protect.keyed_rotation import KeyedRotation, derive_key

A_INSTITUTION = "HospitalMSP"
B_INSTITUTION = "SchoolMSP"
GOAL = 0.05
MIN_PEOPLE = 5  # 2 anchors and 3 measured people at least
PROFILE_QUANTILES = 32
ANCHORS = 16  # holders the attacker knows at both orgs (e.g. its own staff)
# envelope layout (face_engine.envelope): version, purpose id, key id, nonce | body | tag
_ENVELOPE_HEADER = 1 + 4 + 4 + 12
_ENVELOPE_TAG = 16


@dataclass(frozen=True)
class Population:
    """Row k of ``at_a`` and of ``at_b`` are two captures of person k."""

    name: str
    at_a: np.ndarray
    at_b: np.ndarray

    @property
    def people(self) -> int:
        return len(self.at_a)


def unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    out: np.ndarray = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def lfw_population(emb: dict[str, np.ndarray], identity: Callable[[str], str]) -> Population:
    """People with two LFW images or more: the first at A, the second at B."""
    by_id: dict[str, list[str]] = {}
    for rel in sorted(emb):
        by_id.setdefault(identity(rel), []).append(rel)
    two = [rels[:2] for rels in by_id.values() if len(rels) >= 2]
    return Population("lfw", unit_rows(np.array([emb[r[0]] for r in two])),
                      unit_rows(np.array([emb[r[1]] for r in two])))


def same_person_cosines(emb: dict[str, np.ndarray],
                        identity: Callable[[str], str]) -> np.ndarray:
    """Cosine of every pair of one person's images (second captures are drawn at these)."""
    by_id: dict[str, list[np.ndarray]] = {}
    for rel in sorted(emb):
        by_id.setdefault(identity(rel), []).append(emb[rel])
    out: list[float] = []
    for vectors in by_id.values():
        v = unit_rows(np.array(vectors))
        g = v @ v.T
        out += list(g[np.triu_indices(len(v), 1)])
    return np.array(out)


def synthetic_population(real: np.ndarray, genuine: np.ndarray, people: int,
                         rng: np.random.Generator) -> Population:
    """``people`` face-like first captures; each second capture at a cosine drawn from the
    real same-person cosines ``genuine`` (0.55 when there are none)."""
    model = FaceLikeDistribution.fit(real) if len(real) > real.shape[1] else \
        FaceLikeDistribution.parametric(real.shape[1], rng)
    first = unit_rows(model.sample(people, rng))
    drawn = np.round(rng.choice(genuine, people) if len(genuine) else np.full(people, 0.55), 2)
    second = np.empty_like(first)
    for c in np.unique(drawn):  # mated_sample takes one cosine: one call per value
        rows = np.flatnonzero(drawn == c)
        second[rows] = mated_sample(first[rows], float(c), rng)
    return Population("synthetic", first, unit_rows(second))


# --- the stores ----------------------------------------------------------------------------
@dataclass(frozen=True)
class OrgStore:
    """One org's references of a population, made with that org's own keys."""

    kek: bytes
    transform_key: bytes
    institution: str
    references: list[ProtectedReference]

    @classmethod
    def enrol(cls, vectors: np.ndarray, institution: str, tag: str,
              kek: bytes | None = None, transform_key: bytes | None = None) -> OrgStore:
        kek = kek or os.urandom(32)
        transform_key = transform_key or os.urandom(32)
        protector = TemplateProtector(kek, transform_key)
        refs = [protector.enrol(v, f"{tag}-holder-{k}", institution)
                for k, v in enumerate(vectors)]
        return cls(kek, transform_key, institution, refs)

    def templates(self) -> np.ndarray:
        """What the KEK alone opens: each reference's rotated template."""
        opener = TemplateProtector(self.kek, os.urandom(32))  # any transform key: not used
        return np.array([opener.decrypt_transformed(r) for r in self.references])

    def embeddings(self) -> np.ndarray:
        """What both keys open: the embeddings (each template's rotation undone)."""
        out = []
        for ref, t in zip(self.references, self.templates(), strict=True):
            seed = derive_key(self.transform_key, "rotation", ref.holder_pseudonym,
                              ref.institution, ref.version)
            out.append(KeyedRotation(seed, len(t)).matrix().T @ t)
        return np.array(out)


def ciphertext_bodies(refs: list[ProtectedReference]) -> np.ndarray:
    """Each stored template envelope's encrypted body as bytes (uint8 rows)."""
    return np.array([np.frombuffer(r.ciphertext[_ENVELOPE_HEADER:-_ENVELOPE_TAG], np.uint8)
                     for r in refs])


def pseudonym_bits(refs: list[ProtectedReference]) -> np.ndarray:
    return np.array([np.unpackbits(np.frombuffer(bytes.fromhex(r.holder_pseudonym), np.uint8))
                     for r in refs])


def gram_profiles(vectors: np.ndarray, quantiles: int = PROFILE_QUANTILES) -> np.ndarray:
    """Each row's inner products with every other row of its store, as ``quantiles``
    quantiles: unchanged by any rotation applied to the whole store, and by its order."""
    g = np.sort(vectors @ vectors.T, axis=1)[:, :-1]  # unit rows: a row's own product, 1,
    # is its largest: dropped
    picks = np.round(np.linspace(0, g.shape[1] - 1, quantiles)).astype(int)
    out: np.ndarray = g[:, picks]
    return out


# --- scores of pairs (i at A, j at B) --------------------------------------------------------
Pairs = tuple[np.ndarray, np.ndarray]
Score = Callable[[np.ndarray, np.ndarray], np.ndarray]  # rows of A's, rows of B's -> scores


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.sum(unit_rows(a) * unit_rows(b), axis=1)
    return out


def correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    out: np.ndarray = np.sum(a * b, axis=1) / np.sqrt(np.sum(a * a, axis=1)
                                                       * np.sum(b * b, axis=1))
    return out


def agreement(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.mean(a == b, axis=1)
    return out


def anchor_profiles(vectors: np.ndarray, anchors: int) -> np.ndarray:
    """Each row's inner products with the store's first ``anchors`` rows, the references
    of holders the attacker knows at both orgs: unchanged by a rotation the whole store
    shares."""
    out: np.ndarray = vectors @ vectors[:anchors].T
    return out


def profile_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out: np.ndarray = -np.mean(np.abs(a - b), axis=1)
    return out


@dataclass(frozen=True)
class Attack:
    """A score the attacker computes from a feature of A's reference and one of B's."""

    name: str
    at_a: np.ndarray
    at_b: np.ndarray
    score: Score

    def scores(self, pairs: Pairs) -> np.ndarray:
        return self.score(self.at_a[pairs[0]], self.at_b[pairs[1]])


def pairings(n: int, rolls: range, skip: int = 0) -> Pairs:
    """People ``skip`` .. n-1 only (the anchors are known, not measured): (i, i) for
    ``rolls`` = range(0, 1) (mated), else (i, i + k) for k in ``rolls`` modulo the
    measured people (different people when 0 < k < n - skip)."""
    m = n - skip
    i = np.tile(np.arange(m), len(rolls))
    return i + skip, (i + np.repeat(np.array(list(rolls)), m)) % m + skip


def bins_for(n: int) -> int:
    """Few bins for few samples (less upward bias); as bench_face.unlinkability."""
    return max(5, min(30, n // 20))


def commitment_bits(refs: list[ProtectedReference]) -> np.ndarray:
    """Each reference's ledger commitment (``face_commitment``) as 256 bits."""
    return np.array([np.unpackbits(np.frombuffer(bytes.fromhex(r.commitment), np.uint8))
                     for r in refs])


@dataclass(frozen=True)
class Holdings:
    """What the attacker holds of org B: whether B's stored rows reach it, and every key it
    holds (A's own, and any of B's leaked to it). It tries each key on what reaches it."""

    name: str
    holds: str  # in words, for the report
    b_rows: bool
    keks: tuple[bytes, ...]
    transform_keys: tuple[bytes, ...]


def attacks_for(a: OrgStore, own: np.ndarray, b: OrgStore, held: Holdings,
                anchors: int) -> dict[str, Attack]:
    """Every score the attacker can compute from A's opened references (``own``: A's
    embeddings as A's operator recovers them) and what it holds of B."""
    mine = commitment_bits(a.references)
    theirs = commitment_bits(b.references)
    signs = (own > 0).astype(np.uint8)
    out = {
        # the ledger: B's face commitments reach every org
        "commitment bit agreement": Attack("commitment bit agreement", mine, theirs, agreement),
        "B's commitment vs A's embedding signs": Attack(
            "B's commitment vs A's embedding signs", signs, theirs[:, :own.shape[1]],
            agreement),
    }
    if not held.b_rows:
        return out
    own_bytes = own.astype("<f4").view(np.uint8)
    out |= {
        "template ciphertext byte agreement": Attack(
            "template ciphertext byte agreement", ciphertext_bodies(a.references),
            ciphertext_bodies(b.references), agreement),
        "B's ciphertext vs A's embedding bytes": Attack(
            "B's ciphertext vs A's embedding bytes", own_bytes.astype(np.float64),
            ciphertext_bodies(b.references).astype(np.float64), correlation),
        "pseudonym bit agreement": Attack(
            "pseudonym bit agreement", pseudonym_bits(a.references),
            pseudonym_bits(b.references), agreement),
    }
    if b.kek not in held.keks:  # B's templates stay sealed
        return out
    if b.transform_key in held.transform_keys:  # B's references open completely
        return out | {"cosine of embeddings": Attack("cosine of embeddings", own,
                                                     b.embeddings(), cosine)}
    b_templates = b.templates()
    return out | {
        "cosine": Attack("cosine", own, b_templates, cosine),
        "sorted coordinates": Attack("sorted coordinates", np.sort(own, axis=1),
                                     np.sort(b_templates, axis=1), correlation),
        "Gram profile": Attack("Gram profile", gram_profiles(own),
                               gram_profiles(b_templates), profile_distance),
        "anchor profile": Attack("anchor profile", anchor_profiles(own, anchors),
                                 anchor_profiles(b_templates, anchors), correlation),
    }


def levels_of(a: OrgStore, b: OrgStore) -> list[Holdings]:
    """The attacker's holdings, from exactly one operator's to more than it holds."""
    own_keks, own_transforms = (a.kek,), (a.transform_key,)
    return [
        Holdings("operator", "A's KEK and transform key, A's database; of B, the ledger's "
                 "face commitments", False, own_keks, own_transforms),
        Holdings("plus_b_database", "as above, plus B's stored references (B's database, "
                 "no B key)", True, own_keks, own_transforms),
        Holdings("plus_b_database_and_kek", "as above, plus B's KEK (not B's transform "
                 "key)", True, (*own_keks, b.kek), own_transforms),
    ]


def shared_rotation_attacks(own: np.ndarray, population: Population,
                            anchors: int) -> dict[str, Attack]:
    """The invariant attacks against a design this project does not use: every reference
    of B rotated by one matrix (one per institution) instead of one per reference."""
    seed = derive_key(os.urandom(32), "rotation", B_INSTITUTION)
    rotated = KeyedRotation(seed, population.at_b.shape[1]).apply(population.at_b.T).T
    return {"Gram profile": Attack("Gram profile", gram_profiles(own),
                                   gram_profiles(rotated), profile_distance),
            "anchor profile": Attack("anchor profile", anchor_profiles(own, anchors),
                                     anchor_profiles(rotated, anchors), correlation)}


def spread(x: list[float]) -> dict[str, float]:
    return {q: round(float(np.percentile(x, v)), 4)
            for q, v in (("min", 0), ("p5", 5), ("median", 50), ("p95", 95), ("max", 100))}


def noise_floor(pool: np.ndarray, n_mated: int, n_non_mated: int, bins: int, draws: int,
                rng: np.random.Generator) -> dict[str, Any]:
    """D<->sys of two disjoint samples of the measured sizes drawn from ONE distribution
    (different people's scores): what sample noise alone gives."""
    out = []
    for _ in range(draws):
        drawn = rng.permutation(pool)
        out.append(linkability_dsys(drawn[:n_mated], drawn[n_mated:n_mated + n_non_mated],
                                    bins=bins))
    return {"draws": draws, **spread(out)}


def one_key_set(a: OrgStore, population: Population, tag: str) -> tuple[Holdings, OrgStore]:
    """B's references made under A's keys (one key set for both institutions), both stores
    reaching the operator: the contrast that must link."""
    b = OrgStore.enrol(population.at_b, B_INSTITUTION, tag, a.kek, a.transform_key)
    return Holdings("one_key_set", "one key set for both institutions (the all-orgs gateway "
                    "before issue #15), both stores", True, (a.kek,), (a.transform_key,)), b


def summarise(holds: str, per_score: dict[str, list[float]], pools: dict[str, np.ndarray],
              sizes: tuple[int, int, int], null_draws: int,
              rng: np.random.Generator) -> dict[str, Any]:
    """One level: every score's D<->sys over the key draws and its floor; the best score
    (highest median) is the level's."""
    m, non_mated, bins = sizes
    scores = {name: {"d_sys_key_draws": {"draws": len(values), **spread(values)},
                     "d_sys_same_distribution": noise_floor(pools[name], m, non_mated, bins,
                                                            null_draws, rng)}
              for name, values in per_score.items()}
    best, figures = max(scores.items(), key=lambda kv: kv[1]["d_sys_key_draws"]["median"])
    floor = figures["d_sys_same_distribution"]
    d_sys = figures["d_sys_key_draws"]["median"]
    return {"holds": holds, "scores": scores, "best_score": best, "d_sys": d_sys,
            "within_floor": bool(floor["p5"] <= d_sys <= floor["p95"]),
            "goal_met": bool(d_sys <= GOAL)}


def measure_population(population: Population, key_draws: int, non_mated_rolls: int,
                       null_draws: int, rng: np.random.Generator) -> dict[str, Any]:
    """Every level and score for one population, over ``key_draws`` fresh draws of both
    orgs' keys."""
    n = population.people
    anchors = max(2, min(ANCHORS, n // 4))
    m = n - anchors  # people measured: the anchors' links are known, not found
    if n < MIN_PEOPLE:
        raise ValueError(f"{population.name}: need at least {MIN_PEOPLE} people, got {n}")
    rolls = min(non_mated_rolls, m - 1)
    mated = pairings(n, range(0, 1), anchors)
    non_mated = pairings(n, range(1, rolls + 1), anchors)
    # the floor's pool: more pairings of different people than the measurement uses
    pool_pairs = pairings(n, range(1, min(2 * rolls + 1, m - 1) + 1), anchors)
    bins = bins_for(m)
    per_draw: dict[str, dict[str, list[float]]] = {}
    pools: dict[str, dict[str, np.ndarray]] = {}
    holds: dict[str, str] = {}
    recovered_error = 0.0
    same_capture: list[float] = []
    for draw in range(key_draws):
        tag = f"{population.name}-{draw}"
        a = OrgStore.enrol(population.at_a, A_INSTITUTION, f"{tag}-a")
        b = OrgStore.enrol(population.at_b, B_INSTITUTION, f"{tag}-b")
        own = a.embeddings()  # A's operator opens its own references completely
        recovered_error = max(recovered_error, float(np.max(np.abs(own - population.at_a))))
        shared = one_key_set(a, population, f"{tag}-b-one-key-set")
        for held, store in [*((h, b) for h in levels_of(a, b)), shared]:
            holds[held.name] = held.holds
            for name, attack in attacks_for(a, own, store, held, anchors).items():
                per_draw.setdefault(held.name, {}).setdefault(name, []).append(
                    linkability_dsys(attack.scores(mated), attack.scores(non_mated),
                                     bins=bins))
                if draw == 0:
                    pools.setdefault(held.name, {})[name] = attack.scores(pool_pairs)
        # the desk session before issue #15 enrolled ONE capture at both institutions
        cos = Attack("cosine", own, shared[1].embeddings(), cosine).scores(non_mated)
        same_capture.append(linkability_dsys(np.ones(m), cos, bins=bins))
    levels = {name: summarise(holds[name], per_score, pools[name], (m, rolls * m, bins),
                              null_draws, rng)
              for name, per_score in per_draw.items()}
    levels["one_key_set"]["d_sys_same_capture"] = float(np.median(same_capture))
    contrast = {name: round(linkability_dsys(attack.scores(mated), attack.scores(non_mated),
                                             bins=bins), 4)
                for name, attack in shared_rotation_attacks(population.at_a, population,
                                                            anchors).items()}
    levels["shared_rotation_contrast"] = {
        "holds": "a design not used here: one rotation per institution, B's templates and "
                 "A's embeddings", "scores": contrast,
        "best_score": max(contrast, key=contrast.__getitem__), "d_sys": max(contrast.values())}
    return {"people": n, "anchors": anchors, "mated_pairs": m, "non_mated_pairs": rolls * m,
            "bins": bins, "recovered_embedding_max_error": float(f"{recovered_error:.2e}"),
            "levels": levels}


def operator_unlinkability(emb: dict[str, np.ndarray], identity: Callable[[str], str],
                           synthetic_people: int, key_draws: int = 5,
                           non_mated_rolls: int = 10, null_draws: int = 100,
                           seed: int = 1) -> dict[str, Any]:
    """The bench's stage: both populations, with the goal read on each."""
    rng = np.random.default_rng(seed)
    lfw = lfw_population(emb, identity)
    real = unit_rows(np.stack([emb[r] for r in sorted(emb)]))
    populations = [lfw] if lfw.people >= MIN_PEOPLE else []
    skipped = {} if populations else {
        "lfw": f"{lfw.people} people with two images, fewer than {MIN_PEOPLE}"}
    if synthetic_people > 0:
        populations.append(synthetic_population(real, same_person_cosines(emb, identity),
                                                synthetic_people, rng))
    return {"attacker": "org A's operator (HospitalMSP): exactly A's keys and database; of "
                        "org B (SchoolMSP) what reaches it",
            "headline_level": "operator", "goal": GOAL, "key_draws": key_draws,
            "skipped": skipped,
            "populations": {p.name: measure_population(p, key_draws, non_mated_rolls,
                                                       null_draws, rng)
                            for p in populations}}
