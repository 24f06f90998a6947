"""The documents tab: the corpus and its index, files added and removed, index updates.

Adding or removing files updates the index at once for those files alone (the rest of the
corpus folder is not walked), with a progress bar, one update at a time (the ``corpus`` queue);
questions asked meanwhile are answered from the previous index, which ``QA.build`` replaces
only when the new one is complete.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import gradio as gr

from qa.pipeline import QA
from qa.store import IndexMissingError, IndexProblem
from qa.text import counted
from qa.web.memory import release_free_memory
from qa.web.render import render_documents, render_notices
from qa.web.uploads import Outcome, corpus_files, discard_uploaded, remove_files, save_uploads

log = logging.getLogger(__name__)


class DocumentHandlers:
    """The documents tab's part of :class:`qa.web.app.WebApp`: the table, uploads, removals,
    index updates and their events."""

    qa: QA
    max_upload_bytes: int

    def documents_html(self) -> str:
        """The documents table with a summary line (and what is not indexed yet)."""
        try:
            index = self.qa.index
            rows = index.catalog()
        except IndexMissingError:
            return render_documents([], "There is no index yet: press Update index to build it.")
        built = str(index.manifest.get("built_at", "")).replace("T", " ").replace("+00:00", " UTC")
        summary = (
            f"{counted(len(rows), 'document')}, "
            f"{counted(sum(row.chunks for row in rows), 'chunk')} in the index"
        )
        summary += f" (built {built})." if built else "."
        on_disk = set(corpus_files(self.qa.settings.corpus_dir))
        indexed = {row.path for row in rows}
        new, gone = len(on_disk - indexed), len(indexed - on_disk)
        notes = [f"{counted(new, 'file')} in the corpus not indexed yet"] if new else []
        notes += [f"{counted(gone, 'indexed file')} no longer in the corpus"] if gone else []
        if notes:
            summary += " " + "; ".join(notes) + ": press Update index."
        return render_documents(rows, summary)

    def file_choices(self) -> list[tuple[str, str]]:
        """Corpus files for the removal list, labelled with the titles found in them."""
        titles: dict[str, list[str]] = {}
        try:
            for row in self.qa.index.catalog():
                titles.setdefault(row.path, []).append(row.title)
        except IndexMissingError:
            pass
        choices = []
        for path in corpus_files(self.qa.settings.corpus_dir):
            found = titles.get(path)
            if not found:
                label = f"{path} (not indexed yet)"
            elif len(found) == 1:
                label = f"{path}: {found[0]}"
            else:
                label = f"{path}: {len(found)} articles"
            choices.append((label, path))
        return choices

    def upload(self, files: list[str] | None) -> tuple[str, list[str]]:
        """Save uploaded files into the corpus; returns the outcome and the corpus files
        written (empty where nothing changed).

        Gradio's temporary copies of the uploads are deleted afterwards, saved or refused:
        the corpus holds what was accepted, and nothing else is kept.
        """
        if not files:
            return "", []
        try:
            outcomes = save_uploads(
                [(Path(f), Path(f).name) for f in files],
                self.qa.settings.corpus_dir,
                self.max_upload_bytes,
            )
        finally:
            discard_uploaded([Path(f) for f in files], Path(gr.utils.get_upload_folder()))
        return _notices(outcomes), _changed(outcomes)

    def remove(self, paths: list[str] | None) -> tuple[str, list[str]]:
        """Delete the chosen files from the corpus; returns the outcome and the corpus files
        removed (empty where nothing changed)."""
        if not paths:
            return render_notices([(False, "Choose the files to remove first.")]), []
        outcomes = remove_files(paths, self.qa.settings.corpus_dir)
        return _notices(outcomes), _changed(outcomes)

    def update_index(
        self,
        rebuild: bool = False,
        progress: Any = None,
        only: list[str] | None = None,
    ) -> str:
        """Bring the index up to date with the corpus (or rebuild it), reporting progress.

        Args:
            rebuild: Re-embed every document instead of only added and changed ones.
            progress: A ``gr.Progress`` (or any callable taking ``(done, total)`` tuples).
            only: Corpus files to update for alone (``QA.update``'s ``only``): what an upload
                or a removal changed. Other changes to the corpus folder wait for the next
                whole update, and the documents table says so.

        Returns:
            One line saying what changed.
        """

        def embedded(done: int, total: int) -> None:
            if progress is not None and total:
                progress((done, total), desc="Embedding text", unit="chunks")

        if progress is not None:
            progress(0.0, desc="Reading the corpus, embedding new text")
        try:
            report = self.qa.update(
                rebuild=rebuild, progress=embedded, show_progress=False, only=only
            )
        except (IndexProblem, OSError, ValueError) as exc:
            log.exception("index update failed")
            return render_notices([(False, f"The index could not be updated: {exc}")])
        finally:
            # The build's working memory is free now but held by this thread's malloc arena.
            release_free_memory()
        return render_notices([(True, report.describe())])

    def wire_documents(
        self,
        page: gr.Blocks,
        docs_view: gr.HTML,
        files: gr.File,
        to_remove: gr.Dropdown,
        remove: gr.Button,
        update: gr.Button,
        rebuild: gr.Button,
        corpus_status: gr.HTML,
        index_status: gr.HTML,
    ) -> None:
        """Wire the documents tab's events: the table filled on page load, uploads and removals
        followed by an index update, updates and rebuilds on request."""
        changed: gr.State = gr.State([])  # the corpus files the last upload or removal changed
        corpus: dict[str, Any] = {
            "concurrency_limit": 1,
            "concurrency_id": "corpus",
            "api_visibility": "undocumented",
        }

        def refresh() -> tuple[str, Any]:
            return self.documents_html(), gr.Dropdown(choices=self.file_choices(), value=[])

        # Filled on each page load, so a new visitor sees the corpus as it is now; outside the
        # corpus queue, so a page opened during an index update is not held up by it.
        page.load(refresh, None, [docs_view, to_remove], queue=False, api_visibility="undocumented")

        # Gradio finds the progress bar by a gr.Progress() default, hence the B008 waivers.
        def update_if_changed(paths: list[str], progress: gr.Progress = gr.Progress()) -> Any:  # noqa: B008
            if not paths:
                return gr.skip()
            return self.update_index(progress=progress, only=paths)

        def run_update(progress: gr.Progress = gr.Progress()) -> str:  # noqa: B008
            return self.update_index(progress=progress)

        def run_rebuild(progress: gr.Progress = gr.Progress()) -> str:  # noqa: B008
            return self.update_index(rebuild=True, progress=progress)

        def upload(paths: list[str] | None) -> tuple[str, list[str], None]:
            status, written = self.upload(paths)
            return status, written, None

        # Uploading or removing files updates the index at once, for those files alone.
        files.upload(upload, files, [corpus_status, changed, files], **corpus).then(
            update_if_changed, changed, index_status, **corpus
        ).then(refresh, None, [docs_view, to_remove], **corpus)
        remove.click(self.remove, to_remove, [corpus_status, changed], **corpus).then(
            update_if_changed, changed, index_status, **corpus
        ).then(refresh, None, [docs_view, to_remove], **corpus)
        update.click(run_update, None, index_status, **corpus).then(
            refresh, None, [docs_view, to_remove], **corpus
        )
        rebuild.click(run_rebuild, None, index_status, **corpus).then(
            refresh, None, [docs_view, to_remove], **corpus
        )


def _notices(outcomes: list[Outcome]) -> str:
    return render_notices([(o.ok, o.message) for o in outcomes])


def _changed(outcomes: list[Outcome]) -> list[str]:
    """The corpus files that ``outcomes`` wrote or removed."""
    return [o.path for o in outcomes if o.ok and o.path is not None]


def upload_suffixes() -> tuple[str, ...]:
    """The file types the corpus takes, for the upload box."""
    from qa.ingest import SUPPORTED_SUFFIXES

    return SUPPORTED_SUFFIXES
