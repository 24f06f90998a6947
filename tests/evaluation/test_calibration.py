"""Calibration: held-out questions, the operating point, and a whole fit on a small corpus."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from qa.evaluation.calibration import RIGHT_F1, best_operating_point, calibrate, held_out
from qa.evaluation.datasets import EvalQuestion, load_examples
from qa.evaluation.metrics import Observation
from qa.reading.scoring import FEATURES, AnswerModel
from qa.reading.transformer import SpanCandidate
from qa.settings import Settings

PEOPLE = [
    ("Ada", "London", "1815"),
    ("Boris", "Vienna", "1902"),
    ("Chen", "Shanghai", "1950"),
    ("Dara", "Lagos", "1977"),
    ("Elin", "Oslo", "1988"),
    ("Farid", "Cairo", "1961"),
    ("Goran", "Zagreb", "1944"),
    ("Hana", "Kyoto", "1932"),
]


def _write_squad(path: Path) -> None:
    """Two articles of four paragraphs; two questions per paragraph (where, when)."""
    articles = []
    for a in range(2):
        paragraphs = []
        for name, city, year in PEOPLE[4 * a : 4 * a + 4]:
            context = f"{name} was born in {city} in {year}. {name} later moved abroad."
            qas = [
                {
                    "id": f"{name}-{kind}",
                    "question": question,
                    "answers": [{"text": answer, "answer_start": context.index(answer)}],
                }
                for kind, question, answer in (
                    ("where", f"Where was {name} born?", city),
                    ("when", f"In which year was {name} born?", year),
                )
            ]
            paragraphs.append({"context": context, "qas": qas})
        articles.append({"title": f"people {a}", "paragraphs": paragraphs})
    path.write_text(json.dumps({"version": "1.1", "data": articles}), encoding="utf-8")


class NameReader:
    """Reads like a reader that knows the pattern: sure of the place or year of the person
    the question names, when the text holds that person; otherwise unsure of any city."""

    model_name = "/nowhere/name-reader"

    def warm_up(self) -> None:
        pass

    def read(self, question: str, contexts: Sequence[str], top_n: int = 5) -> list[SpanCandidate]:
        name = re.search(r"was (\w+) born", question).group(1)  # type: ignore[union-attr]
        wants_year = "year" in question
        found = []
        for i, text in enumerate(contexts):
            for m in re.finditer(r"(\w+) was born in (\w+) in (\d+)", text):
                group = 3 if wants_year else 2
                sure = m.group(1) == name
                found.append(
                    SpanCandidate(
                        i,
                        m.start(group),
                        m.end(group),
                        m.group(group),
                        0.9 if sure else 0.2,
                        0.05 if sure else 0.7,
                    )
                )
        return sorted(found, key=lambda c: -c.score)[:top_n]


def _observation(p: float, right: bool, answerable: bool) -> Observation:
    """A question whose best answer scores ``p`` and is right or wrong."""
    question = EvalQuestion(
        f"q{p}",
        "q?",
        ("yes",) if answerable else (),
        "d" if answerable else None,
        "what" if answerable else "unanswerable",
        answerable,
    )
    return Observation(question, "yes" if right else "no", p, None, None, (), 0.0)


def test_the_operating_point_maximises_f1_with_abstention_scoring_one() -> None:
    outcomes = [
        _observation(0.9, True, True),
        _observation(0.8, True, True),
        _observation(0.6, False, True),
        _observation(0.3, False, False),
    ]
    point = best_operating_point(outcomes, None)
    assert 0.3 < point["threshold"] <= 0.6
    assert point["f1"] == pytest.approx(3 / 4)
    assert point["abstained_unanswerable"] == 1.0
    # Answering the wrong 0.6 costs nothing more than abstaining on it: the tie answers.
    assert point["answered_answerable"] == 1.0
    everything_right = [_observation(0.2, True, True), _observation(0.1, True, True)]
    assert best_operating_point(everything_right, None)["threshold"] <= 0.1


def test_the_operating_point_answers_most_while_keeping_the_abstention_promise() -> None:
    # Ten unanswerable questions score 0.1 to 1.0; five answerable ones, answered right, score
    # 0.65 to 0.95.
    unanswerable = [_observation(p / 10, False, False) for p in range(1, 11)]
    answerable = [_observation(p, True, True) for p in (0.65, 0.75, 0.85, 0.9, 0.95)]
    outcomes = unanswerable + answerable
    # Abstaining on 7 in 10 needs a threshold above 0.7: one answerable question is lost.
    point = best_operating_point(outcomes, 0.7)
    assert 0.7 < point["threshold"] <= 0.75
    assert point["abstained_unanswerable"] == pytest.approx(0.7)
    assert point["answered_answerable"] == pytest.approx(0.8)
    # 6 in 10 lets it drop below 0.65 (the lowest that keeps the promise): every answer kept.
    point = best_operating_point(outcomes, 0.6)
    assert 0.6 < point["threshold"] <= 0.65
    assert point["answered_answerable"] == 1.0
    # All of them: above every score.
    assert best_operating_point(outcomes, 1.0)["abstained_unanswerable"] == 1.0


def test_the_command_line_default_is_the_calibration_default() -> None:
    import inspect

    from qa.cli import calibrate_cmd
    from qa.evaluation.calibration import MIN_ABSTAIN

    default = inspect.signature(calibrate_cmd).parameters["min_abstain"].default
    assert default == MIN_ABSTAIN


def test_held_out_questions_are_those_the_reader_did_not_train_on(tmp_path: Path) -> None:
    _write_squad(tmp_path / "people.json")
    training = {"fractions": {"people.json": 0.5}, "seed": 3}
    trained = {e.qid for e in load_examples(tmp_path, training["fractions"], 3)}
    questions, documents = held_out(tmp_path, "people.json", training)
    assert len(documents) == 8
    assert questions and len(questions) + len(trained) == 16
    assert not {f"people.json/{q.id}" for q in questions} & trained


def test_held_out_follows_the_sample_seed_of_a_later_pass(tmp_path: Path) -> None:
    _write_squad(tmp_path / "people.json")
    fractions = {"people.json": 0.5}
    first = held_out(tmp_path, "people.json", {"fractions": fractions, "seed": 3})[0]
    later = {"fractions": fractions, "seed": 9, "sample_seed": 3}
    assert [q.id for q in held_out(tmp_path, "people.json", later)[0]] == [q.id for q in first]
    reshuffled = held_out(tmp_path, "people.json", {"fractions": fractions, "seed": 9})[0]
    assert [q.id for q in reshuffled] != [q.id for q in first]


@pytest.mark.slow
def test_calibrate_fits_a_model_that_separates_right_from_wrong(tmp_path: Path, embedder) -> None:
    data = tmp_path / "train"
    data.mkdir()
    _write_squad(data / "people.json")
    val = tmp_path / "val.json"
    _write_squad(val)
    metrics = tmp_path / "metrics.json"
    metrics.write_text(
        json.dumps({"training": {"fractions": {"people.json": 0.5}, "seed": 3}}), encoding="utf-8"
    )
    thresholds = tmp_path / "thresholds.json"
    thresholds.write_text(json.dumps({"sentence": {"value": 0.4, "how": "kept"}}), encoding="utf-8")
    out = tmp_path / "answer_model.json"
    settings = Settings(index_dir=tmp_path / "index", corpus_dir=tmp_path / "corpus")
    info = calibrate(
        data,
        ["people.json"],
        val,
        settings,
        reader_metrics=metrics,
        out=out,
        thresholds=thresholds,
        progress=False,
        reader=NameReader(),  # type: ignore[arg-type]
    )
    model = AnswerModel.load(out)
    held, _ = held_out(data, "people.json", {"fractions": {"people.json": 0.5}, "seed": 3})
    assert info["fit_questions"] == info["fit_files"]["people.json"]["asked"] == len(held) > 4
    assert info["validation_questions"] == 16 and info["c"] in (0.01, 0.1, 1.0, 10.0)
    table = json.loads(thresholds.read_text(encoding="utf-8"))
    assert table["sentence"] == {"value": 0.4, "how": "kept"}
    assert 0.0 <= table["reader"]["value"] <= 1.0 and "qa calibrate" in table["reader"]["how"]
    # The reader is sure exactly when it is right here: the fitted model must agree.
    coef = dict(zip(FEATURES, model.coef, strict=True))
    assert coef["log_span_prob"] + coef["relative_prob"] + coef["log_answer_prob"] > 0
    assert info["validation"]["f1"] > 0.8
    assert RIGHT_F1 == 0.5
