"""Command line: ``python -m face_engine {verify A B | detect IMG}``.

Exit codes: 0 done (for ``verify``, whatever the decision), 2 bad input (unreadable file,
not an image we accept, no/multiple faces, quality refusal), 1 models or calibration
missing. Errors are one line: ``error: <code>: <message>``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from face_engine.errors import FaceError, InputError, ModelError, QualityError
from face_engine.verify import load_operating_points


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m face_engine")
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", help="are two photos the same person?")
    v.add_argument("a")
    v.add_argument("b")
    v.add_argument("--operating-point", default="far_1e-3",
                   choices=sorted(load_operating_points()))
    d = sub.add_parser("detect", help="faces and quality report of one photo")
    d.add_argument("image")
    d.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)

    from face_engine.engine import load_default_engine

    try:
        engine = load_default_engine()
        if args.command == "verify":
            result = engine.verify(_read(args.a), _read(args.b), args.operating_point)
            decision = "MATCH" if result.match else "NO MATCH"
            print(f"{decision} score={result.score:.4f} threshold={result.threshold:.4f} "
                  f"operating_point={result.operating_point}")
            return 0
        data = _read(args.image)
        faces = engine.detect_all(data)
        analysis = engine.analyze(data)
        if args.json:
            print(json.dumps({"faces_detected": len(faces), **analysis.as_dict()}, indent=2))
            return 0
        print(f"faces detected: {len(faces)}")
        x1, y1, x2, y2 = analysis.box
        print(f"face: box=({x1:.0f},{y1:.0f})-({x2:.0f},{y2:.0f}) "
              f"score={analysis.det_score:.3f}")
        print(f"pose: yaw={analysis.pose.yaw:+.1f} pitch={analysis.pose.pitch:+.1f} "
              f"roll={analysis.pose.roll:+.1f} deg")
        for c in analysis.quality.checks:
            status = "ok" if c.ok else f"FAIL ({c.code})"
            print(f"  {c.measure:17s} {c.value:10.3f}  limit {c.limit:18s} {status}")
        print("quality: " + ("pass" if analysis.quality.passed else "refused"))
        return 0
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (InputError, QualityError, FaceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
