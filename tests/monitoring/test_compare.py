"""`stroke-mlops compare`, and `models promote` / `models rollback` acting on it.

Two real versions are published to a folder store; the real predictor serves disjoint real
patients with each (as a traffic split would) and the real request-log sink writes one log.
Outcomes go in through `stroke-mlops feedback` (real feedback files); they are chosen from the
decisions each version logged, so each test knows the realised recall it should read back.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from stroke_mlops.cli import main
from stroke_mlops.data import dataset, schema
from stroke_mlops.monitoring import reference
from stroke_mlops.monitoring.monitor import run_monitor
from stroke_mlops.monitoring.replay import as_instances
from stroke_mlops.registry import signature
from stroke_mlops.registry.model_dir import write_model_dir
from stroke_mlops.registry.signing import private_key_from_env
from stroke_mlops.registry.store import LocalModelStore
from stroke_mlops.serving.model import StrokeModel
from stroke_mlops.serving.request_log import RequestLogger, RequestLogSink, writer_for
from tests.serving.model_dirs import fit_pipeline

CHAMPION, CHALLENGER = "v1-champion", "v2-challenger"
ROWS_PER_VERSION = 400


@dataclass(frozen=True)
class Served:
    """The predictions one version made, as its answers said: (prediction id, decision)."""

    version: str
    answers: list[tuple[str, int]]

    def flagged(self) -> list[str]:
        return [pid for pid, decision in self.answers if decision == 1]

    def unflagged(self) -> list[str]:
        return [pid for pid, decision in self.answers if decision == 0]


@dataclass(frozen=True)
class SplitWorld:
    built: dict[str, Path]  # version → its signed model directory
    log: Path  # the request log both versions wrote
    served: dict[str, Served]
    rows: pd.DataFrame  # every served patient row (for the "never printed" check)


def _serve(model_dir: Path, rows: pd.DataFrame, log_uri: str) -> list[tuple[str, int]]:
    sink = RequestLogSink(writer_for(log_uri), batch_size=100, flush_interval_s=60)
    model = StrokeModel(str(model_dir), request_logger=RequestLogger(stream=None, sink=sink))
    model.load()
    answers = []
    try:
        for index, instance in enumerate(as_instances(rows)):
            response = model.predict(
                {"instances": [instance]}, headers={"x-request-id": f"r{index}"}
            )
            assert isinstance(response, dict)
            answers.append((response["prediction_id"], response["predictions"][0]["decision"]))
    finally:
        model.request_logger.close()
    assert sink.dropped == 0
    return answers


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, patients_with_ids: pd.DataFrame) -> SplitWorld:
    split = dataset.split_patients(patients_with_ids, seed=42)
    reference_bytes: bytes | None = None
    built = {}
    for version, c in ((CHAMPION, 1.0), (CHALLENGER, 0.05)):
        model = fit_pipeline(
            split.train, LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
        )
        reference_bytes = reference.reference_csv_bytes(
            reference.build_reference_set(model, split.test)
        )
        built[version] = tmp_path_factory.mktemp("built") / version
        write_model_dir(
            built[version],
            model=model,
            signature=signature.build_signature(signature.example_instances(split.train)),
            model_card=f"# {version}\n",
            metadata={"version": version, "threshold": 0.5, "model_name": schema.MODEL_NAME},
            extra_files={reference.REFERENCE_FILE: reference_bytes},
            signing_key=private_key_from_env(),
        )
    pool = split.validation.iloc[: 2 * ROWS_PER_VERSION]
    log = tmp_path_factory.mktemp("requests")
    served = {
        CHAMPION: Served(CHAMPION, _serve(built[CHAMPION], pool.iloc[:ROWS_PER_VERSION], str(log))),
        CHALLENGER: Served(
            CHALLENGER, _serve(built[CHALLENGER], pool.iloc[ROWS_PER_VERSION:], str(log))
        ),
    }
    return SplitWorld(built=built, log=log, served=served, rows=pool)


def _store(world: SplitWorld, root: Path, production: tuple[str, ...] = (CHAMPION,)) -> str:
    store = LocalModelStore(root)
    for version, directory in world.built.items():
        store.publish_version(directory, version)
    for version in production:
        store.promote(version)
    return str(root)


def _outcomes(served: Served, strokes: int, caught: int) -> list[tuple[str, int]]:
    """``strokes`` outcomes of 1, ``caught`` of them on rows the version flagged; every other
    answered row an outcome of 0."""
    flagged, unflagged = served.flagged(), served.unflagged()
    assert caught <= len(flagged) and strokes - caught <= len(unflagged)
    positive = set(flagged[:caught]) | set(unflagged[: strokes - caught])
    return [(pid, int(pid in positive)) for pid, _ in served.answers]


def _feedback(store: str, path: Path, outcomes: list[tuple[str, int]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prediction_id", "stroke"])
        writer.writerows(outcomes)
    assert main(["feedback", "--store", store, "--labels", str(path)]) == 0


def _compare(
    store: str, world: SplitWorld, output: Path, *extra: str, champion: str = CHAMPION
) -> dict:
    challenger = CHALLENGER if champion == CHAMPION else CHAMPION
    code = main(
        [
            "compare", "--store", store, "--requests", str(world.log), "--champion", champion,
            "--challenger", challenger, "--output", str(output), *extra,
        ]
    )  # fmt: skip
    assert code == 0
    return json.loads(output.read_text())


def _label(
    world: SplitWorld, store: str, tmp_path: Path, champion: tuple, challenger: tuple
) -> None:
    outcomes = _outcomes(world.served[CHAMPION], *champion)
    outcomes += _outcomes(world.served[CHALLENGER], *challenger)
    _feedback(store, tmp_path / "labels.csv", outcomes)


def test_compare_reads_each_versions_rows_decisions_and_realised_recall(
    world: SplitWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _store(world, tmp_path / "store")
    _label(world, store, tmp_path, champion=(50, 20), challenger=(50, 45))
    capsys.readouterr()

    result = _compare(store, world, tmp_path / "compare.json")

    out, err = capsys.readouterr()
    assert result["verdict"] == "challenger_better"
    by_version = {v["version"]: v for v in result["versions"]}
    for version, caught in ((CHAMPION, 20), (CHALLENGER, 45)):
        answers = world.served[version].answers
        evidence = by_version[version]
        assert evidence["rows"] == ROWS_PER_VERSION == evidence["labelled_rows"]
        assert evidence["positive_rate"] == pytest.approx(
            sum(d for _, d in answers) / ROWS_PER_VERSION
        )
        assert evidence["labelled_positives"] == 50 and evidence["labelled_hits"] == caught
        assert evidence["recall"]["value"] == pytest.approx(caught / 50)
        low, high = evidence["recall"]["low"], evidence["recall"]["high"]
        assert low < caught / 50 < high  # Wilson 95 %
        assert evidence["precision"]["value"] == pytest.approx(
            caught / len(world.served[version].flagged())
        )
    difference = result["recall_difference"]
    assert difference["value"] == pytest.approx(0.5) and difference["low"] > 0
    assert result["production"] == CHAMPION and result["rule"]["margin"] == 0.05
    assert result["version_intervals"].startswith("Wilson")
    assert difference["method"].startswith("Newcombe") and difference["level"] == 0.9
    assert out.startswith("compare: challenger_better") and len(out.splitlines()) <= 8
    assert err == ""
    shown = out + json.dumps(result)
    for column in ("avg_glucose_level", "bmi", "age"):  # no patient value reaches the output
        for value in world.rows[column].dropna().astype(str).unique():
            if len(value) >= 5:
                assert value not in shown, column


def test_the_verdicts_worse_not_worse_and_too_few_labels(world: SplitWorld, tmp_path: Path) -> None:
    store = _store(world, tmp_path / "store")
    _label(world, store, tmp_path, champion=(50, 45), challenger=(50, 20))
    worse = _compare(store, world, tmp_path / "worse.json")
    assert worse["verdict"] == "worse" and worse["recall_difference"]["high"] < 0

    swapped = _compare(store, world, tmp_path / "equal.json", champion=CHALLENGER)
    assert swapped["verdict"] == "challenger_better"  # the roles swapped
    loose = _compare(store, world, tmp_path / "loose.json", "--min-labelled-strokes", "60")
    assert loose["verdict"] == "too_few_labels"
    assert "champion has 50 labelled strokes; 60 needed" in loose["reasons"][0]

    other = _store(world, tmp_path / "other")
    _label(world, other, tmp_path, champion=(50, 40), challenger=(50, 40))
    assert _compare(other, world, tmp_path / "tie.json")["verdict"] == "too_few_labels"
    wide = _compare(other, world, tmp_path / "wide.json", "--margin", "0.2")
    assert wide["verdict"] == "not_worse" and -0.2 < wide["recall_difference"]["low"] < 0


def test_a_damaged_or_copied_log_is_counted_not_trusted(world: SplitWorld, tmp_path: Path) -> None:
    store = _store(world, tmp_path / "store")
    _label(world, store, tmp_path, champion=(50, 20), challenger=(50, 45))
    log = tmp_path / "log"
    shutil.copytree(world.log, log)
    objects = sorted(log.rglob("*.jsonl"))
    shutil.copy(objects[0], objects[0].with_name("copy-" + objects[0].name))  # counted once
    with objects[-1].open("a") as handle:
        handle.write('{"model_version": "v2-challenger", "status": "ok", "inputs": {}}\n')
        handle.write("not json\n")
        handle.write(json.dumps({"model_version": "x" * 500, "status": "ok"}) + "\n")

    result = json.loads(
        (tmp_path / "c.json").read_text()
        if main(["compare", "--store", store, "--requests", str(log), "--champion", CHAMPION,
                 "--challenger", CHALLENGER, "--output", str(tmp_path / "c.json")]) == 0
        else "{}"
    )  # fmt: skip

    by_version = {v["version"]: v for v in result["versions"]}
    assert [by_version[v]["rows"] for v in (CHAMPION, CHALLENGER)] == [ROWS_PER_VERSION] * 2
    copied = sum(1 for line in objects[0].read_text().splitlines() if line.strip())
    duplicates = sum(v["duplicate_records"] for v in result["versions"])
    assert duplicates == copied and by_version[CHALLENGER]["invalid_records"] == 1
    assert result["unreadable_lines"] == 1 and result["other_version_requests"] == 1
    assert result["verdict"] == "challenger_better"


def test_bad_arguments_exit_2_with_one_line(
    world: SplitWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _store(world, tmp_path / "store")
    base = ["compare", "--store", store, "--requests", str(world.log)]
    cases = [
        [*base, "--champion", CHAMPION],  # no challenger
        [*base, "--champion", CHAMPION, "--challenger", CHAMPION],
        [*base, "--champion", CHAMPION, "--challenger", "v9-missing"],
        [*base, "--champion", CHAMPION, "--challenger", "../etc"],
        [*base, "--champion", CHAMPION, "--challenger", CHALLENGER, "--margin", "2"],
        [*base, "--champion", CHAMPION, "--challenger", CHALLENGER, "--output", str(tmp_path)],
        ["compare", "--store", store, "--requests", str(tmp_path / "none"), "--champion",
         CHAMPION, "--challenger", CHALLENGER, "--output", str(tmp_path / "c.json")],
    ]  # fmt: skip
    for argv in cases:
        capsys.readouterr()
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse's own refusals
            code = int(exit_.code or 0)
        assert code == 2, argv
        out, err = capsys.readouterr()
        assert out == "" and len(err.splitlines()) == 1 and err.startswith("error: "), err


def _pointer(store: str) -> dict:
    return json.loads((Path(store) / "stroke" / "production.json").read_text())


def test_promote_acts_only_on_a_passing_comparison_of_exactly_that_pair(
    world: SplitWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _store(world, tmp_path / "store")
    _label(world, store, tmp_path, champion=(50, 20), challenger=(50, 45))
    better = tmp_path / "better.json"
    _compare(store, world, better)
    swapped = tmp_path / "swapped.json"
    _compare(store, world, swapped, champion=CHALLENGER)  # verdict worse, other pair
    undecided = tmp_path / "undecided.json"
    _compare(store, world, undecided, "--min-labelled-strokes", "60")  # too_few_labels
    promote = ["models", "promote", "--store", store, "--comparison"]

    capsys.readouterr()
    assert main([*promote, str(undecided), CHALLENGER]) == 1  # the right pair, no evidence
    assert main([*promote, str(better), CHAMPION]) == 1  # not the challenger judged
    assert main([*promote, str(swapped), CHAMPION]) == 1  # verdict worse (and not production)
    other = _store(world, tmp_path / "other")
    assert main([*promote[:3], other, "--comparison", str(better), CHALLENGER]) == 1  # other store
    tampered = tmp_path / "tampered.json"
    tampered.write_text("{not json")
    assert main([*promote, str(tampered), CHALLENGER]) == 2
    err = capsys.readouterr().err.splitlines()
    assert [line.split(":")[0] for line in err] == ["refused"] * 4 + ["error"]
    assert _pointer(store)["version"] == CHAMPION

    # the champion was promoted again after the comparison: the evidence is stale
    stale = LocalModelStore(tmp_path / "store")
    stale.promote(CHALLENGER)
    stale.promote(CHAMPION)
    assert main([*promote, str(better), CHALLENGER]) == 1
    assert "promoted again" in capsys.readouterr().err
    fresh = tmp_path / "fresh.json"
    _compare(store, world, fresh)

    assert main([*promote, str(fresh), CHALLENGER]) == 0
    assert _pointer(store)["version"] == CHALLENGER and _pointer(store)["previous"] == CHAMPION
    assert f"production: {CHAMPION} -> {CHALLENGER}" in capsys.readouterr().out
    assert main([*promote, str(fresh), CHALLENGER]) == 1  # production moved on: refused
    assert _pointer(store)["version"] == CHALLENGER


def test_rollback_takes_a_worse_comparison_as_its_reason(
    world: SplitWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _store(world, tmp_path / "store", production=(CHAMPION, CHALLENGER))
    _label(world, store, tmp_path, champion=(50, 45), challenger=(50, 20))
    worse = tmp_path / "worse.json"
    assert _compare(store, world, worse)["verdict"] == "worse"
    rollback = ["models", "rollback", "--store", store, "--comparison"]

    capsys.readouterr()
    assert main([*rollback, str(worse), CHALLENGER]) == 1  # not the champion compared with
    assert "refused: " in capsys.readouterr().err
    better = tmp_path / "better.json"
    _compare(store, world, better, champion=CHALLENGER)  # CHAMPION better than CHALLENGER
    capsys.readouterr()
    assert main([*rollback, str(better), CHAMPION]) == 1  # not a worse verdict
    undecided = tmp_path / "undecided.json"
    _compare(store, world, undecided, "--min-labelled-strokes", "60")
    capsys.readouterr()
    assert main([*rollback, str(undecided), CHAMPION]) == 1  # the right pair, too_few_labels
    assert capsys.readouterr().err.count("refused: ") == 1
    assert _pointer(store)["version"] == CHALLENGER

    assert main([*rollback, str(worse), CHAMPION]) == 0
    out = capsys.readouterr().out
    assert f"{CHALLENGER} -> {CHAMPION}" in out and f"{CHALLENGER} is worse than {CHAMPION}" in out
    assert _pointer(store)["version"] == CHAMPION
    assert main([*rollback, str(worse), CHAMPION]) == 1  # production is no longer the challenger


def test_the_monitor_report_has_a_section_per_version(world: SplitWorld, tmp_path: Path) -> None:
    store = _store(world, tmp_path / "store")
    _label(world, store, tmp_path, champion=(50, 20), challenger=(10, 9))
    summary = run_monitor(store, str(world.log), tmp_path / "report")

    versions = {v.version: v for v in summary.versions}
    assert summary.versions[0].version == CHAMPION and set(versions) == {
        CHAMPION,
        CHALLENGER,
    }
    assert versions[CHAMPION].rows == versions[CHALLENGER].rows == ROWS_PER_VERSION
    assert versions[CHAMPION].recall.value == pytest.approx(20 / 50)
    assert versions[CHALLENGER].recall.value is None  # 10 strokes: under the monitor's 20
    challenger_rate = sum(d for _, d in world.served[CHALLENGER].answers) / ROWS_PER_VERSION
    assert versions[CHALLENGER].positive_rate == pytest.approx(challenger_rate)
    page = (tmp_path / "report" / "report.html").read_text()
    assert "<h2 id=versions>Model versions</h2>" in page
    assert CHALLENGER in page and "too few labels (10 strokes)" in page

    alone = tmp_path / "alone"
    shutil.copytree(world.log, alone)
    for path in alone.rglob("*.jsonl"):
        kept = [line for line in path.read_text().splitlines() if CHALLENGER not in line]
        path.write_text("".join(line + "\n" for line in kept))
    single = run_monitor(store, str(alone), tmp_path / "single")
    assert single.versions == []
    assert "id=versions" not in (tmp_path / "single" / "report.html").read_text()


def test_the_newcombe_interval_matches_newcombes_published_example() -> None:
    """Newcombe (1998), Statistics in Medicine 17:873, table II, method 10: 56/70 - 48/80."""
    from stroke_mlops.monitoring.compare import newcombe_interval

    difference, low, high = newcombe_interval(56, 70, 48, 80, z=1.959964)
    assert difference == pytest.approx(0.2)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)
