"""The ``qa`` command line: index, search, doc, ask, eval, serve, deploy, train-reader."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from qa.logs import setup_logging
from qa.settings import Settings

if TYPE_CHECKING:
    from qa.filters import Filter
    from qa.types import Answer, Result, Source

app = typer.Typer(
    help="Extractive question answering over a corpus of news articles.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

CorpusOpt = Annotated[
    Path | None,
    typer.Option("--corpus", help="Corpus folder (default: ./corpus or QA_CORPUS_DIR)."),
]
IndexOpt = Annotated[
    Path | None, typer.Option("--index", help="Index folder (default: ./index or QA_INDEX_DIR).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
ReaderOpt = Annotated[
    str | None,
    typer.Option("--reader", help="none (sentence extractor), default, or a checkpoint."),
]
WhereOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--where",
        metavar="KEY=VALUE",
        help="Search only documents whose KEY (folder, path, title, date or a metadata key) "
        "is VALUE; repeat for more conditions. folder=business also takes its sub-folders.",
    ),
]
SinceOpt = Annotated[
    str | None,
    typer.Option("--since", metavar="YYYY-MM-DD", help="Only documents dated this day or later."),
]
UntilOpt = Annotated[
    str | None,
    typer.Option("--until", metavar="YYYY-MM-DD", help="Only documents dated this day or earlier."),
]


EngineOpt = Annotated[
    str | None,
    typer.Option(
        "--engine", help="local (default) or ray: build on a Ray cluster (needs the scale extra)."
    ),
]
AddressOpt = Annotated[
    str | None,
    typer.Option("--address", help="The Ray cluster (default: auto, the one on this machine)."),
]


def _filter(where: list[str] | None, since: str | None, until: str | None) -> Filter | None:
    """The filter the options name, ``None`` without any; a refused one fails with the reason."""
    from qa.filters import Filter

    try:
        found = Filter.parse(where=where, since=since, until=until)
    except ValueError as exc:
        _fail(str(exc))
    return found or None


def _settings(
    corpus: Path | None = None, index: Path | None = None, **overrides: object
) -> Settings:
    try:
        return Settings.from_env(corpus_dir=corpus, index_dir=index, **overrides)
    except ValueError as exc:
        _fail(str(exc))


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


def _seed_if_new(settings: Settings, corpus_given: bool) -> None:
    """Start a default corpus folder that does not exist yet from the packaged seed articles.

    Only the default (``./corpus``, no ``--corpus``, no ``QA_CORPUS_DIR``): a folder the user
    named and mistyped is an error, not a place to create.
    """
    import os

    from qa.settings import DEFAULT_CORPUS_DIR

    if corpus_given or "QA_CORPUS_DIR" in os.environ or settings.corpus_dir.exists():
        return
    if settings.corpus_dir != DEFAULT_CORPUS_DIR:
        return
    from qa.seed import copy_seed_corpus

    copied = copy_seed_corpus(settings.corpus_dir)
    typer.echo(
        f"no corpus folder here: started {settings.corpus_dir}/ with the {len(copied)} seed "
        "articles that ship with qa (add your own files there)",
        err=True,
    )


# Returns qa.QA, imported lazily for a fast --help.
def _qa(settings: Settings, question: str | None = None):  # noqa: ANN202
    """The pipeline of ``settings``.

    With ``question`` (a command that embeds it), the question encoder is loaded and the
    question embedded on a second thread (:mod:`qa.ahead`) while this one imports the pipeline
    (faiss, bm25s and scipy: half a second) and reads the index.
    """
    from qa.embedding import Embedder

    embedder = Embedder.of(settings)
    if question is not None and settings.engine == "local" and settings.retrieval_mode != "lexical":
        from qa import ahead

        ahead.start(lambda: embedder.encode_query(question))
    from qa.pipeline import QA

    return QA(settings, embedder=embedder)


def _guard(func):  # noqa: ANN001, ANN202
    """Turn the product's expected failures into one-line errors instead of stack traces."""
    from functools import wraps

    @wraps(func)
    def wrapper(*args, **kwargs):  # noqa: ANN202
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            if not isinstance(exc, _expected_failures()):
                raise
            _fail(exc.args[0] if exc.args else str(exc))

    return wrapper


def _expected_failures() -> tuple[type[Exception], ...]:
    """The failures ``_guard`` turns into one line. Imported only when one is raised: the index
    store's module imports faiss and bm25s, which a command loads on its own time (a cold
    ``qa search`` loads its question encoder meanwhile, see ``_qa``)."""
    from qa.embedding import ModelLoadError
    from qa.models.checksums import ModelFileError
    from qa.scale import ScaleExtraMissing
    from qa.store import IndexProblem

    return (
        ModelLoadError,
        ModelFileError,
        IndexProblem,
        ScaleExtraMissing,
        KeyError,
        FileNotFoundError,
    )


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    setup_logging(verbose)


@app.command()
@_guard
def index(
    corpus: CorpusOpt = None,
    index: IndexOpt = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Re-embed everything.")] = False,
    engine: EngineOpt = None,
    address: AddressOpt = None,
    shards: Annotated[
        int | None,
        typer.Option(
            "--shards",
            min=1,
            help="Shards of the ray engine's index (default: as many as it has, 1 for a new one).",
        ),
    ] = None,
    only: Annotated[
        list[Path] | None,
        typer.Option(
            "--only",
            help="Update for this corpus file alone (added, changed or deleted), without "
            "walking the rest of the corpus; repeat for more files.",
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Build or update the index from the corpus (only added/changed files are embedded)."""
    settings = _settings(corpus, index, engine=engine, ray_address=address, shards=shards)
    _seed_if_new(settings, corpus is not None)
    if not settings.corpus_dir.is_dir():
        _fail(f"corpus folder {settings.corpus_dir} does not exist")
    if only and (rebuild or settings.engine == "ray"):
        _fail("--only updates a local index in place: not with --rebuild or the ray engine")
    if settings.engine == "ray":
        from qa.scale.build import build_on_cluster
        from qa.scale.layout import SHARDS_FILE, ShardedLayout

        if shards is None and (settings.index_dir / SHARDS_FILE).exists():
            # An update keeps the shard count: another would move documents between shards.
            settings = settings.replace(shards=ShardedLayout.load(settings.index_dir).shards)

        sharded = build_on_cluster(settings, rebuild=rebuild)
        typer.echo(json.dumps(sharded.to_dict()) if json_out else sharded.describe())
        return
    qa = _qa(settings)
    try:
        # Paths as the user typed them, from the current folder.
        listed = [os.path.abspath(p) for p in only] if only else None
        report = qa.build(rebuild=rebuild, show_progress=not json_out, only=listed)
    except ValueError as exc:
        _fail(str(exc))
    # Built here (once per machine) rather than while the first question waits for them.
    qa.embedder.prepare_query_encoder()
    qa.reading.prepare_reader()
    if json_out:
        typer.echo(json.dumps(report.to_dict()))
        return
    typer.echo(f"{report.describe()} -> {report.path}")


@app.command()
@_guard
def search(
    query: Annotated[str, typer.Argument(help="The question or keywords.")],
    k: Annotated[int | None, typer.Option("--k", min=1, help="How many chunks.")] = None,
    mode: Annotated[
        str | None, typer.Option("--mode", help="hybrid (default), dense or lexical.")
    ] = None,
    where: WhereOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    corpus: CorpusOpt = None,
    index: IndexOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Rank the chunks that best match QUERY."""
    settings = _settings(corpus, index, top_k=k, retrieval_mode=mode)
    only = _filter(where, since, until)
    passages = _qa(settings, query).search(query, filter=only)
    if json_out:
        results = [
            {
                "doc_id": p.chunk.doc_id,
                "title": p.title,
                "path": p.path,
                "start": p.chunk.start,
                "end": p.chunk.end,
                "text": p.chunk.text,
                "score": p.score,
            }
            for p in passages
        ]
        payload: dict[str, object] = {"query": query, "results": results}
        if only:
            payload["filter"] = only.to_dict()
        typer.echo(json.dumps(payload, ensure_ascii=False))
        return
    if only:
        typer.echo(f"(searched only: {only.describe()})\n")
    if not passages:
        typer.echo("no matching chunks")
    for rank, p in enumerate(passages, start=1):
        typer.echo(
            f"{rank}. [{p.score:.4f}] {p.title} "
            f"({p.chunk.doc_id}, chars {p.chunk.start}-{p.chunk.end})"
        )
        typer.echo(f"   {p.chunk.text}\n")


@app.command()
@_guard
def ask(
    question: Annotated[str, typer.Argument(help="The question, in quotes.")],
    k: Annotated[
        int | None, typer.Option("--k", min=1, help="How many answers (best + alternatives).")
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option("--threshold", help="Abstain below this score (default: the mode's value)."),
    ] = None,
    reader: ReaderOpt = None,
    where: WhereOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    corpus: CorpusOpt = None,
    index: IndexOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Answer QUESTION with the exact words of an article, or say the corpus does not."""
    settings = _settings(corpus, index, n_answers=k, threshold=threshold, reader_model=reader)
    only = _filter(where, since, until)
    try:
        result = _qa(settings, question).ask(question, filter=only)
    except ValueError as exc:
        _fail(str(exc))
    if json_out:
        payload = result.to_dict()
        if only:
            payload["filter"] = only.to_dict()
        typer.echo(json.dumps(payload, ensure_ascii=False))
        return
    if only:
        typer.echo(f"(searched only: {only.describe()})\n")
    _print_result(result)


def _print_result(result: Result) -> None:
    """``result`` as ``qa ask`` prints it for people."""
    if result.understood_as:
        typer.echo(f"(read as: {result.understood_as})\n")
    if result.abstained:
        typer.echo("The corpus does not hold an answer to this question.")
        if result.passages:
            typer.echo("\nClosest passages:")
        for rank, p in enumerate(result.passages, start=1):
            where = _where(p.chunk.doc_id, p.path, p.chunk.start, p.chunk.end)
            typer.echo(f"{rank}. {p.title} ({where})")
            typer.echo("   " + p.chunk.text.replace("\n", "\n   ") + "\n")
        typer.echo(f"[{result.mode}]")
        return
    best, *others = result.answers
    typer.echo(best.text)
    if len(best.sources) > 1:
        typer.echo(f"\n  {len(best.sources)} articles say so:")
        for rank, s in enumerate(best.sources, start=1):
            typer.echo(f"\n  {rank}. {s.title}\n     {_where(s.doc_id, s.path, s.start, s.end)}")
            typer.echo(f"     score {s.score:.3f}")
            if s.context != s.text:
                typer.echo(f"     {_marked(s)}")
        typer.echo(f"\n  score {best.score:.3f} [{result.mode}]")
    else:
        if best.context != best.text:
            typer.echo(f"\n  {_marked(best)}")
        typer.echo(f"\n  {best.title}\n  {_where(best.doc_id, best.path, best.start, best.end)}")
        typer.echo(f"  score {best.score:.3f} [{result.mode}]")
    if others:
        typer.echo("\nAlternatives:")
    for rank, a in enumerate(others, start=2):
        agreeing = f" ({len(a.sources)} articles)" if len(a.sources) > 1 else ""
        typer.echo(f"{rank}. [{a.score:.3f}] {a.text}{agreeing}")
        typer.echo(f"   {a.title} ({_where(a.doc_id, a.path, a.start, a.end)})")


@app.command()
@_guard
def chat(
    reader: ReaderOpt = None,
    corpus: CorpusOpt = None,
    index: IndexOpt = None,
) -> None:
    """A conversation in the terminal: follow-up questions ("And when?") are read in the light
    of the earlier turns. An empty line or /quit ends it; /new starts a new conversation."""
    from qa.conversation import Turn, add_turn

    qa = _qa(_settings(corpus, index, reader_model=reader))
    turns: list[Turn] = []
    typer.echo("Ask a question (/new: a new conversation, /quit or an empty line: stop).")
    while True:
        try:
            question = input("\n> ").strip()
        except EOFError:
            break
        if question in ("", "/quit", "/exit"):
            break
        if question == "/new":
            turns = []
            typer.echo("(a new conversation)")
            continue
        try:
            result = qa.ask(question, conversation=turns)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            continue
        _print_result(result)
        turns = add_turn(turns, question, result)


def _marked(span: Answer | Source) -> str:
    """The sentence holding ``span`` with the span between » and «, at its offsets."""
    cut = span.start - span.context_start
    return f"{span.context[:cut]}»{span.text}«{span.context[cut + len(span.text) :]}"


def _where(doc_id: str, path: str, start: int, end: int) -> str:
    """Where a span lies: document id, its path when that differs, character offsets."""
    source = doc_id if path == doc_id else f"{doc_id}, {path}"
    return f"{source}, chars {start}-{end}"


@app.command()
@_guard
def doc(
    doc_id: Annotated[str, typer.Argument(help="A document id, as `qa search` prints it.")],
    corpus: CorpusOpt = None,
    index: IndexOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Print a document's cleaned text and metadata (the text every offset indexes into)."""
    document = _qa(_settings(corpus, index)).document(doc_id)
    if json_out:
        payload = {
            "doc_id": document.doc_id,
            "title": document.title,
            "path": document.path,
            "text": document.text,
            "metadata": document.metadata,
            "content_hash": document.content_hash,
        }
        typer.echo(json.dumps(payload, ensure_ascii=False))
        return
    typer.echo(f"{document.title}\n{document.path}  ({document.doc_id})")
    for key, value in sorted(document.metadata.items()):
        typer.echo(f"{key}: {value}")
    typer.echo(f"\n{document.text}")


@app.command("eval")
@_guard
def eval_(
    set_file: Annotated[
        Path | None,
        typer.Option(
            "--set", help="A set in the format of eval/README.md (default: the seed set)."
        ),
    ] = None,
    squad: Annotated[
        Path | None,
        typer.Option("--squad", help="A SQuAD v1.1/v2.0 file, asked over all its paragraphs."),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="Ask a deterministic sample of N questions."),
    ] = None,
    without_gold: Annotated[
        float | None,
        typer.Option(
            "--without-gold",
            min=0.0,
            max=1.0,
            help="With --squad: share of the questions asked with their own paragraph left out "
            "of the index, scored as unanswerable (1 = all of them).",
        ),
    ] = None,
    distractors: Annotated[
        Path | None,
        typer.Option(
            "--distractors", help="With --squad: a corpus folder indexed beside the paragraphs."
        ),
    ] = None,
    corpora: Annotated[
        list[Path] | None,
        typer.Option(
            "--corpus",
            help="With --set (or the seed set): ask against a temporary index of the seed "
            "articles and this corpus folder (repeatable; ids relative to it) instead of the "
            "index. A folder that does not exist is left out, and a conversation set's "
            "conversations over it are skipped, with a warning.",
        ),
    ] = None,
    reader: ReaderOpt = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Run folder (default: ./eval/runs/<set>-<timestamp>/)."),
    ] = None,
    index: IndexOpt = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON object of summary metrics.")
    ] = False,
) -> None:
    """Measure answers, retrieval, abstention and latency on an evaluation set."""
    import shlex

    from qa.evaluation import report, runner
    from qa.reading.transformer import ReaderModelError
    from qa.seed import SEED_SET

    if set_file is not None and squad is not None:
        _fail("give --set or --squad, not both")
    if squad is None and (without_gold is not None or distractors is not None):
        _fail("--without-gold and --distractors go with --squad")
    if squad is not None and corpora:
        _fail("--corpus goes with --set; with --squad, --distractors indexes a folder beside it")
    if distractors is not None and not distractors.is_dir():
        _fail(f"distractor folder {distractors} does not exist")
    settings = _settings(None, index, reader_model=reader)
    try:
        if squad is not None:
            run = runner.run_squad(
                squad,
                settings,
                limit=limit,
                unanswerable_share=without_gold or 0.0,
                distractors=distractors,
            )
        else:
            run = runner.run_jsonl(set_file or SEED_SET, settings, limit=limit, corpora=corpora)
    except (ValueError, ReaderModelError) as exc:
        _fail(str(exc))
    given = {
        "--set": set_file,
        "--squad": squad,
        "--limit": limit,
        "--without-gold": without_gold,
        "--distractors": distractors,
        "--reader": reader,
        "--out": out,
        "--index": index,
    }
    command = ["qa", "eval", *(x for k, v in given.items() if v is not None for x in (k, str(v)))]
    command += [x for folder in corpora or () for x in ("--corpus", str(folder))]
    command += ["--json"] * json_out
    files = report.write_run(run, out or runner.default_out_dir(run), shlex.join(command))
    if json_out:
        typer.echo(json.dumps(report.summary(run)))
        return
    for key, value in report.summary(run).items():
        typer.echo(f"{key:>18}  {'n/a' if value is None else round(value, 4)}")
    for note in run.notes:
        typer.echo(f"note: {note}")
    typer.echo(
        f"mode {run.mode}; threshold in use {run.threshold:.4f} (chosen by `qa calibrate` on the "
        f"validation set); best on this set {run.recommended.threshold:.4f} "
        f"(F1 {run.recommended.f1:.3f}), for information only"
    )
    typer.echo(f"report: {files['report.md']}")


@app.command()
@_guard
def serve(
    port: Annotated[
        int | None,
        typer.Option("--port", min=1, max=65535, help="Port (default: 7860)."),
    ] = None,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; 127.0.0.1 keeps the page local.")
    ] = "127.0.0.1",
    corpus: CorpusOpt = None,
    index: IndexOpt = None,
) -> None:
    """Serve the web chat, building the index first if there is none."""
    from qa.web.app import serve as serve_page

    settings = _settings(corpus, index)
    _seed_if_new(settings, corpus is not None)
    serve_page(settings, host=host, port=port)


@app.command()
@_guard
def deploy(
    index: IndexOpt = None,
    address: AddressOpt = None,
    replicas: Annotated[
        int | None,
        typer.Option(
            "--replicas",
            min=1,
            help="Replicas of each deployment, spread over the nodes (default: 1); with 2 or "
            "more a lost node's questions go on to another.",
        ),
    ] = None,
) -> None:
    """Serve the ray engine's sharded index on its Ray cluster (Ray Serve: a deployment per
    shard, a router, a reader); `QA_ENGINE=ray` then makes ask, search and serve use it."""
    from qa.scale import require_ray

    require_ray()  # before serving's import of ray, to say what is missing
    from qa.scale.serving import deploy_on_cluster

    settings = _settings(None, index, engine="ray", ray_address=address, replicas=replicas)
    for name, node in sorted(deploy_on_cluster(settings).items()):
        typer.echo(f"{name}: node {node}")


@app.command("calibrate")
@_guard
def calibrate_cmd(
    data: Annotated[Path, typer.Option("--data", help="Folder of SQuAD *.json training files.")],
    files: Annotated[
        list[str],
        typer.Option("--file", help="Training file whose held-out questions fit the model."),
    ],
    val_file: Annotated[
        Path, typer.Option("--val", help="SQuAD-format validation file (choices are made on it).")
    ],
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="Held-out questions asked per file (a sample)."),
    ] = None,
    reader_metrics: Annotated[
        Path | None,
        typer.Option(
            "--reader-metrics",
            help="metrics.json of the reader (default: the packaged reader's), telling which "
            "questions it was trained on.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for answer_model.json and thresholds.json (default, in a checkout "
            "only: qa/reading, where the product reads them).",
        ),
    ] = None,
    min_abstain: Annotated[
        float,
        typer.Option(
            "--min-abstain",
            min=0.0,
            max=1.0,
            help="The threshold is the lowest that abstains on at least this share of the "
            "validation file's unanswerable questions; 0 chooses the best F1 instead.",
        ),
    ] = 0.85,
) -> None:
    """Fit the answer model and choose the abstention threshold (in a checkout: into qa/reading)."""
    import shutil

    from qa.evaluation.calibration import calibrate
    from qa.evaluation.runner import SOURCE_DIR
    from qa.reading.answers import THRESHOLDS_PATH
    from qa.reading.scoring import DEFAULT_ANSWER_MODEL
    from qa.reading.transformer import DEFAULT_READER_DIR

    if not data.is_dir():
        _fail(f"training data folder {data} does not exist")
    if not val_file.is_file():
        _fail(f"validation file {val_file} does not exist")
    metrics = reader_metrics or DEFAULT_READER_DIR / "metrics.json"
    if not metrics.is_file():
        _fail(f"reader metrics {metrics} do not exist")
    model_file, thresholds_file = DEFAULT_ANSWER_MODEL, THRESHOLDS_PATH
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        model_file, thresholds_file = out / DEFAULT_ANSWER_MODEL.name, out / THRESHOLDS_PATH.name
        shutil.copyfile(THRESHOLDS_PATH, thresholds_file)
    elif not (SOURCE_DIR / ".git").exists():
        _fail("qa is installed, not run from a checkout: give --out DIR for the fitted files")
    try:
        info = calibrate(
            data,
            files,
            val_file,
            _settings(None, None),
            reader_metrics=metrics,
            limit=limit,
            out=model_file,
            thresholds=thresholds_file,
            min_abstain=min_abstain or None,
        )
    except (ValueError, KeyError) as exc:
        _fail(str(exc))
    typer.echo(json.dumps(info, indent=2))


@app.command("train-reader")
def train_reader_cmd(
    data: Annotated[Path, typer.Option("--data", help="Folder of SQuAD v1.1 *.json files.")],
    out: Annotated[
        Path, typer.Option("--out", help="Output model folder (never the installed package).")
    ] = Path("train-runs/reader"),
    epochs: Annotated[float, typer.Option(help="Passes over the features.")] = 1.0,
    max_length: Annotated[int, typer.Option(help="Training window length in tokens.")] = 128,
    stride: Annotated[int, typer.Option(help="Window overlap in tokens.")] = 48,
    batch_size: Annotated[int, typer.Option(help="Features per step.")] = 32,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 1e-4,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 13,
    sample_seed: Annotated[
        int | None,
        typer.Option(help="Seed of the --fraction question sample (default: --seed)."),
    ] = None,
    max_features: Annotated[
        int | None, typer.Option(help="Cap on training windows (default: every question).")
    ] = None,
    fraction: Annotated[
        list[str] | None,
        typer.Option(
            "--fraction", help="FILE=SHARE: keep this share of a file's questions (repeatable)."
        ),
    ] = None,
    max_minutes: Annotated[
        float | None, typer.Option(help="Stop cleanly after this many minutes of training.")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Resume from checkpoints.")] = False,
    val_file: Annotated[
        Path | None,
        typer.Option(help="SQuAD validation file: the best-scoring checkpoint is kept."),
    ] = None,
    eval_every: Annotated[int, typer.Option(help="Steps between validation runs.")] = 1000,
    eval_file: Annotated[
        Path | None, typer.Option(help="SQuAD file measured once at the end, for the record.")
    ] = None,
    base_model: Annotated[
        Path | None, typer.Option(help="Start from this QA checkpoint instead of MiniLM.")
    ] = None,
    threads: Annotated[int | None, typer.Option(help="Torch CPU threads.")] = None,
    device: Annotated[
        str,
        typer.Option(help="auto (a CUDA device where torch sees one, else the CPU), cpu or cuda."),
    ] = "auto",
    workers: Annotated[
        int, typer.Option(min=1, help="Processes that build the training windows.")
    ] = 1,
    fit_budget: Annotated[
        bool,
        typer.Option(
            "--fit-budget",
            help="With --max-minutes: end the learning-rate schedule where the budget ends.",
        ),
    ] = False,
) -> None:
    """Train the answer reader on SQuAD-format data (see qa/models/reader/MODEL_CARD.md)."""
    from qa.training.reader import parse_fractions, train_reader

    if not data.is_dir():
        _fail(f"training data folder {data} does not exist")
    try:
        fractions = parse_fractions(fraction or [])
        metrics = train_reader(
            data,
            out,
            epochs=epochs,
            max_length=max_length,
            stride=stride,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            sample_seed=sample_seed,
            max_minutes=max_minutes,
            resume=resume,
            val_file=val_file,
            eval_every=eval_every,
            eval_file=eval_file,
            threads=threads,
            max_features=max_features,
            base_model=base_model,
            fractions=fractions,
            device=device,
            workers=workers,
            fit_budget=fit_budget,
        )
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    typer.echo(json.dumps(metrics.get("closed_eval", {}), indent=2))


@app.command("average-readers")
@_guard
def average_readers_cmd(
    folders: Annotated[list[Path], typer.Argument(help="Reader folders to average (2 or more).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the averaged reader.")],
    val_file: Annotated[
        Path | None,
        typer.Option(help="SQuAD file to measure the inputs and the average on (closed)."),
    ] = None,
) -> None:
    """Average the weights of readers trained one from another (see the model card)."""
    from qa.reading.transformer import ReaderModelError
    from qa.training.reader import average_readers

    for folder in folders:
        if not (folder / "config.json").is_file():
            _fail(f"{folder} is not a reader folder (no config.json)")
    if val_file is not None and not val_file.is_file():
        _fail(f"validation file {val_file} does not exist")
    try:
        metrics = average_readers(folders, out, val_file=val_file)
    except (ValueError, ReaderModelError) as exc:
        _fail(str(exc))
    typer.echo(json.dumps({k: metrics[k] for k in ("averaged_from", "validation")}, indent=2))
