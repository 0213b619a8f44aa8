"""What an import says once it is stored, in the words of what it imported: the commands
(``import_images``, ``import_reference_set``) and the workspace's import forms say the same
lines (the API answers the report itself: runs/apis.py ``ImportReportSerializer``)."""

from __future__ import annotations

from evalhub.core.text import counted
from evalhub.runs.importing.names import skipped_sentence
from evalhub.runs.importing.services import ImportReport
from evalhub.runs.models import GenerationRun, ReferenceSet


def run_import_lines(run: GenerationRun, report: ImportReport) -> list[str]:
    """``"Run 'r': 1 video imported, 1 new to this project, 0 already in this project."``,
    then the files its manifest does not list, named (the first 20), if any."""
    lines = [f"Run {run.name!r}: {counted(report.images_created, run.media_kind)} imported, "
             f"{report.blobs_created} new to this project, "
             f"{report.duplicates_of_existing_blobs} already in this project."]
    if report.files_skipped:
        lines.append(skipped_sentence(report.files_skipped, report.skipped_files,
                                      why="not in the manifest"))
    return lines


def reference_import_lines(reference_set: ReferenceSet, report: ImportReport) -> list[str]:
    """``"Reference set 's': 2 images added (2 new to this project)."``, then the files that
    are not images or videos, named (the first 20), if any."""
    lines = [f"Reference set {reference_set.name!r}: "
             f"{counted(report.images_created, reference_set.media_kind)} added "
             f"({report.blobs_created} new to this project)."]
    if report.files_skipped:
        lines.append(skipped_sentence(report.files_skipped, report.skipped_files,
                                      why="not images or videos"))
    return lines
