"""The ``qa`` command line: index, search, doc, ask, eval, serve, train-reader."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from qa.settings import Settings

app = typer.Typer(
    help="Extractive question answering over a corpus of news articles.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

CorpusOpt = Annotated[
    Optional[Path], typer.Option("--corpus", help="Corpus folder (default: ./corpus or QA_CORPUS_DIR).")
]
IndexOpt = Annotated[
    Optional[Path], typer.Option("--index", help="Index folder (default: ./index or QA_INDEX_DIR).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _settings(corpus: Path | None = None, index: Path | None = None, **overrides: object) -> Settings:
    try:
        return Settings.from_env(corpus_dir=corpus, index_dir=index, **overrides)
    except ValueError as exc:
        _fail(str(exc))


def quiet_libraries(verbose: bool = False) -> None:
    """Keep library chatter (weight-loading bars, debug lines) out of the user's terminal."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    level = logging.INFO if verbose else logging.WARNING
    for name in ("sentence_transformers", "httpx", "urllib3"):
        logging.getLogger(name).setLevel(level)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


def _qa(settings: Settings):  # noqa: ANN202 - returns qa.QA, imported lazily for a fast --help
    from qa.pipeline import QA

    return QA(settings)


def _guard(func):  # noqa: ANN001, ANN202
    """Turn the product's expected failures into one-line errors instead of stack traces."""
    from functools import wraps

    @wraps(func)
    def wrapper(*args, **kwargs):  # noqa: ANN202
        from qa.embedding import ModelLoadError
        from qa.store import IndexProblem

        try:
            return func(*args, **kwargs)
        except (ModelLoadError, IndexProblem, KeyError, FileNotFoundError) as exc:
            _fail(exc.args[0] if exc.args else str(exc))

    return wrapper


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    quiet_libraries(verbose)


@app.command()
@_guard
def index(
    corpus: CorpusOpt = None,
    index: IndexOpt = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Re-embed everything.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Build or update the index from the corpus (only added/changed files are embedded)."""
    settings = _settings(corpus, index)
    if not settings.corpus_dir.is_dir():
        _fail(f"corpus folder {settings.corpus_dir} does not exist")
    report = _qa(settings).build(rebuild=rebuild, show_progress=not json_out)
    summary = {
        "documents": report.documents,
        "chunks": report.chunks,
        "added": report.added,
        "changed": report.changed,
        "removed": report.removed,
        "embedded_chunks": report.embedded_chunks,
        "rebuilt": report.rebuilt,
        "seconds": round(report.seconds, 3),
        "path": str(report.path),
    }
    if json_out:
        typer.echo(json.dumps(summary))
        return
    kind = "rebuilt" if report.rebuilt else "updated"
    typer.echo(
        f"index {kind}: {report.documents} documents, {report.chunks} chunks "
        f"({len(report.added)} added, {len(report.changed)} changed, {len(report.removed)} removed, "
        f"{report.embedded_chunks} chunks embedded) in {report.seconds:.1f}s -> {report.path}"
    )


@app.command()
@_guard
def search(
    query: Annotated[str, typer.Argument(help="The question or keywords.")],
    k: Annotated[Optional[int], typer.Option("--k", min=1, help="How many chunks.")] = None,
    mode: Annotated[
        Optional[str], typer.Option("--mode", help="hybrid (default), dense or lexical.")
    ] = None,
    corpus: CorpusOpt = None,
    index: IndexOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Rank the chunks that best match QUERY."""
    settings = _settings(corpus, index, top_k=k, retrieval_mode=mode)
    passages = _qa(settings).search(query)
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
        typer.echo(json.dumps({"query": query, "results": results}, ensure_ascii=False))
        return
    if not passages:
        typer.echo("no matching chunks")
    for rank, p in enumerate(passages, start=1):
        typer.echo(
            f"{rank}. [{p.score:.4f}] {p.title} ({p.chunk.doc_id}, chars {p.chunk.start}-{p.chunk.end})"
        )
        typer.echo(f"   {p.chunk.text}\n")


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
