"""scripts/figures.py renders the README's and docs' figure tables from docs/figures/*.json, and
`--check` fails when a table differs from its file; scripts/bench_meta.py is what makes a JSON
name its run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from script_module import load_script

REPO = Path(__file__).resolve().parents[2]
FIGURES_PY = REPO / "scripts" / "figures.py"

figures = load_script("figures")
bench_meta = load_script("bench_meta")


def copy_docs(tmp_path: Path) -> Path:
    """README.md, docs/*.md and docs/figures/ of the repo, in a scratch tree."""
    (tmp_path / "docs").mkdir()
    shutil.copy(REPO / "README.md", tmp_path / "README.md")
    for doc in (REPO / "docs").glob("*.md"):
        shutil.copy(doc, tmp_path / "docs" / doc.name)
    shutil.copytree(REPO / "docs" / "figures", tmp_path / "docs" / "figures")
    return tmp_path


def check(repo: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(FIGURES_PY), "--check", "--repo", str(repo)],
                          capture_output=True, text=True, check=False, timeout=60)


def test_check_passes_on_the_repo() -> None:
    done = check(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "block(s) checked" in done.stdout


def test_every_figure_section_has_rendered_blocks() -> None:
    readme = (REPO / "README.md").read_text()
    found = {m["name"] for m in figures.BLOCK.finditer(readme)}
    assert {"ledger", "mip", "gateway", "gateway-orgs", "shim", "face-accuracy-summary",
            "face-latency", "face-dedup"} <= found
    for doc in ("ledger.md", "face.md"):
        assert figures.BLOCK.search((REPO / "docs" / doc).read_text()), doc
    face = {m["name"] for m in figures.BLOCK.finditer((REPO / "docs/face.md").read_text())}
    assert {"face-accuracy", "face-unlinkability", "face-operator-linkability",
            "face-latency", "face-dedup"} <= face


def test_a_changed_number_in_the_readme_fails_the_check(tmp_path: Path) -> None:
    repo = copy_docs(tmp_path)
    readme = repo / "README.md"
    text = readme.read_text()
    mip = json.loads((repo / "docs/figures/mip-devnet.json").read_text())
    p50 = f"| {mip['results']['Access:Read']['p50_ms']:.1f} |"
    block = figures.BLOCK.search(text[text.index("<!-- figures:mip "):])
    assert block is not None and p50 in block["body"]
    readme.write_text(text.replace(p50, "| 0.1 |", 1))
    done = check(repo)
    assert done.returncode == 1
    assert "-| Access:Read | 0.1 |" in done.stdout  # the diff shows the hand-edited line
    # Rendering (without --check) puts the JSON's figure back.
    subprocess.run([sys.executable, str(FIGURES_PY), "--repo", str(repo)], check=True,
                   capture_output=True, timeout=60)
    assert readme.read_text() == text
    assert check(repo).returncode == 0


def test_a_changed_json_fails_the_check(tmp_path: Path) -> None:
    repo = copy_docs(tmp_path)
    source = repo / "docs/figures/mip-devnet.json"
    report = json.loads(source.read_text())
    report["results"]["Access:Read"]["p50_ms"] = 123.4
    source.write_text(json.dumps(report))
    done = check(repo)
    assert done.returncode == 1
    assert "+| Access:Read | 123.4 |" in done.stdout


def test_a_json_without_machine_metadata_is_refused(tmp_path: Path) -> None:
    repo = copy_docs(tmp_path)
    source = repo / "docs/figures/mip-devnet.json"
    report = json.loads(source.read_text())
    del report["machine"]["cpu_model"]
    del report["loadavg_start"]
    source.write_text(json.dumps(report))
    done = check(repo)
    assert done.returncode == 2
    assert "no machine metadata" in done.stderr
    assert "machine.cpu_model" in done.stderr and "loadavg_start" in done.stderr
    with pytest.raises(figures.FigureError, match="no machine metadata"):
        figures.load("mip-devnet.json", repo / "docs" / "figures")


def test_unknown_block_and_missing_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(figures.FigureError, match="unknown figure block"):
        figures.render_text("<!-- figures:nope a.json -->\n<!-- /figures:nope -->",
                            tmp_path)
    with pytest.raises(figures.FigureError, match="cannot read"):
        figures.render_text("<!-- figures:mip gone.json -->\n<!-- /figures:mip -->",
                            tmp_path)


def ledger_report(tx_per_s: dict[str, float]) -> dict[str, object]:
    def results(rate: float) -> dict[str, object]:
        mode = {"tx_per_s": rate, "p50_ms": 10.0, "p95_ms": 12.0, "n": 10, "inflight": 16,
                "rounds": 1, "cpu_ms_per_op": {"devnet": 3.0, "chaincode": 1.0,
                                               "client": 1.0}}
        return {"submit_seq": mode, "submit_16": mode, "evaluate_seq": mode,
                "evaluate_16": mode}

    meta = bench_meta.RunMeta("ledger", ["scripts/bench_ledger.py"])
    return meta.report({"target": "devnet", "runs": [
        {"policy": policy, "results": results(rate)} for policy, rate in tx_per_s.items()]})


def test_a_ratio_only_between_sides_of_one_run(tmp_path: Path) -> None:
    both = ledger_report({"MAJORITY Endorsement": 300.0, "OR(x)": 400.0})
    one_a = ledger_report({"MAJORITY Endorsement": 300.0})
    one_b = ledger_report({"OR(x)": 400.0})
    for name, report in (("both.json", both), ("a.json", one_a), ("b.json", one_b)):
        bench_meta.write_json(tmp_path / name, report)
    same_run = figures.render_text(
        "<!-- figures:ledger both.json -->\n<!-- /figures:ledger -->", tmp_path)
    assert "Same run (`both.json`)" in same_run and "×0.75" in same_run
    two_runs = figures.render_text(
        "<!-- figures:ledger a.json b.json -->\n<!-- /figures:ledger -->", tmp_path)
    assert "Same run" not in two_runs and "×" not in two_runs  # no ratio across two runs
    assert "Run `a.json`" in two_runs and "Run `b.json`" in two_runs


def test_no_block_is_kept_as_written(tmp_path: Path) -> None:
    """Every block names its JSON: one without a file is refused, not kept as written."""
    text = "<!-- figures:face-accuracy -->\n| hand | written |\n<!-- /figures:face-accuracy -->"
    with pytest.raises(figures.FigureError, match="names no JSON file"):
        figures.render_text(text, tmp_path)
    for doc in figures.documents(REPO):
        for block in figures.BLOCK.finditer(doc.read_text()):
            assert block["args"].split(), (doc.name, block["name"])


def face_accuracy_block(name: str, figures_dir: Path) -> str:
    return figures.render_text(
        f"<!-- figures:{name} face-accuracy.json -->\n<!-- /figures:{name} -->", figures_dir)


@pytest.mark.parametrize("renderer", ["face-accuracy", "face-accuracy-summary"])
def test_face_accuracy_headline_is_the_pooled_held_out_tar(renderer: str,
                                                           tmp_path: Path) -> None:
    report = json.loads((REPO / "docs/figures/face-accuracy.json").read_text())
    pooled = report["held_out"]["pooled"]["far_1e-3"]
    headline = f"**{pooled['tar'] * 100:.2f} %** ({pooled['genuine_accepted']}/" \
               f"{pooled['genuine_pairs']})"
    rendered = face_accuracy_block(renderer, REPO / "docs/figures")
    assert headline in rendered
    # the goal's verdict is computed from the same pooled TAR
    verdict = "**met**" if pooled["tar"] >= 0.99 else "**not met**"
    assert f"TAR ≥ 99 % at FAR 1e-3, held out: {verdict}" in rendered
    # the in-sample figure is shown, and labelled, beside it
    in_sample = report["in_sample"]["flip_average"]["far_1e-3"]["tar"]
    assert f"{in_sample * 100:.2f} %" in rendered and "**in-sample**" in rendered

    # another pooled TAR in the file: another headline and, past 99 %, another verdict
    shutil.copytree(REPO / "docs/figures", tmp_path / "figures")
    pooled.update(genuine_accepted=pooled["genuine_pairs"] - 1,
                  tar=(pooled["genuine_pairs"] - 1) / pooled["genuine_pairs"])
    bench_meta.write_json(tmp_path / "figures/face-accuracy.json", report)
    changed = face_accuracy_block(renderer, tmp_path / "figures")
    assert f"**{pooled['tar'] * 100:.2f} %** ({pooled['genuine_accepted']}/" in changed
    assert headline not in changed
    assert "TAR ≥ 99 % at FAR 1e-3, held out: **met**" in changed


def test_face_accuracy_rows_say_what_is_not_held_out() -> None:
    rendered = face_accuracy_block("face-accuracy", REPO / "docs/figures")
    report = json.loads((REPO / "docs/figures/face-accuracy.json").read_text())
    rows = [line for line in rendered.splitlines() if line.startswith("| ")]
    # one row per held-out fold and the pooled row, in the headline table
    for fold in report["held_out"]["per_fold"]:
        assert any(r.startswith(f"| {fold['test_fold']} (") for r in rows)
    labelled = [r for r in rows if "imposed on every fold" in r or "**in-sample**" in r]
    assert len(labelled) == 2 + 2 + 2  # two pipelines imposed, two stored, two more in-sample
    assert all(r.rstrip(" |").split("| ")[-1].strip() for r in labelled)  # a reason each
    assert "largest score change protected vs raw" in rendered


def test_unlinkability_is_read_against_the_floor(tmp_path: Path) -> None:
    report = json.loads((REPO / "docs/figures/face-unlinkability.json").read_text())
    text = ("<!-- figures:face-unlinkability face-unlinkability.json -->\n"
            "<!-- /figures:face-unlinkability -->")
    rendered = figures.render_text(text, REPO / "docs/figures")
    keys = report["unlinkability"]["d_sys_key_draws"]
    assert f"**{keys['median']:.3f}**" in rendered
    report["unlinkability"]["d_sys_key_draws"]["median"] = 0.5
    bench_meta.write_json(tmp_path / "face-unlinkability.json", report)
    assert "**outside** the noise floor" in figures.render_text(text, tmp_path)


def test_operator_linkability_goal_is_read_from_the_file(tmp_path: Path) -> None:
    report = json.loads((REPO / "docs/figures/face-operator-linkability.json").read_text())
    text = ("<!-- figures:face-operator-linkability face-operator-linkability.json -->\n"
            "<!-- /figures:face-operator-linkability -->")
    rendered = figures.render_text(text, REPO / "docs/figures")
    pops = report["operator"]["populations"]
    for p in pops.values():
        assert f"**{p['levels']['operator']['d_sys']:.3f}**" in rendered
    for name, p in pops.items():
        if p["levels"]["operator"]["d_sys"] <= 0.05:
            assert f"{name}: **met**" in rendered
    first, *_ = pops.values()
    first["levels"]["operator"]["d_sys"] = 0.2  # over the goal and outside the floor
    first["levels"]["operator"]["within_floor"] = False
    bench_meta.write_json(tmp_path / "face-operator-linkability.json", report)
    changed = figures.render_text(text, tmp_path)
    assert f"{next(iter(pops))}: **not met** (0.200, **outside** its floor" in changed
    first["levels"]["operator"]["within_floor"] = True  # within a floor above the goal
    first["levels"]["operator"]["scores"][first["levels"]["operator"]["best_score"]][
        "d_sys_same_distribution"]["p95"] = 0.3
    bench_meta.write_json(tmp_path / "face-operator-linkability.json", report)
    assert "**not resolved** by a sample of this size" in figures.render_text(text, tmp_path)


def test_run_meta_records_the_run() -> None:
    report = bench_meta.RunMeta("x", ["scripts/bench_ledger.py", "--n", "3"]).report({"a": 1})
    assert bench_meta.missing_metadata(report) == []
    assert report["command"] == "python scripts/bench_ledger.py --n 3"
    assert report["machine"]["cores"] >= 1 and report["machine"]["cpu_model"]
    assert len(report["machine"]["commit"]) == 40
    assert report["a"] == 1
    assert bench_meta.missing_metadata({"bench": "x"}) == [
        "date", "command", "machine", "loadavg_start", "loadavg_end"]


def test_percentiles_are_numpys() -> None:
    assert bench_meta.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert bench_meta.percentile(range(101), 95) == 95.0
    assert bench_meta.median(iter([3.0, 1.0, 2.0])) == 2.0
    with pytest.raises(ValueError):
        bench_meta.percentile([], 50)


def test_bench_meta_wraps_a_bench_json_line(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    code = "print('text'); print('{\"tx_per_s\": 5}')"
    assert bench_meta.main(["--json", str(out), "--bench", "toy", "--",
                            sys.executable, "-c", code]) == 0
    report = json.loads(out.read_text())
    assert report["bench"] == "toy" and report["tx_per_s"] == 5
    assert bench_meta.missing_metadata(report) == []
    assert bench_meta.main(["--json", str(out), "--", sys.executable, "-c", "print(1)"]) == 2


def test_the_overload_caveat_reads_the_load_before_the_run() -> None:
    """A bench keeps both cores busy itself, so only the load it started under says whether
    other jobs were competing."""
    quiet_start = {"loadavg_start": [0.4, 1.0, 2.2], "loadavg_end": [2.4, 1.5, 2.3],
                   "machine": {"cores": 2}}
    busy_start = {**quiet_start, "loadavg_start": [6.0, 5.0, 4.0]}
    end_only = {**quiet_start, "loadavg_start": None, "loadavg_end": [3.1, 2.0, 1.0]}
    assert figures.load_caveat(quiet_start) == ""
    assert "started at load 6.0 on 2 cores" in figures.load_caveat(busy_start)
    assert "load 3.1" in figures.load_caveat(end_only)
