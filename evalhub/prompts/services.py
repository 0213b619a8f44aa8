"""Creating prompt sets, atomically, from parsed prompt files."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from evalhub.blobs.after_store import blobs_after_store
from evalhub.blobs.services import blob_store, image_inspect
from evalhub.blobs.sources import FileSource
from evalhub.blobs.validation import InvalidImage
from evalhub.blobs.written_files import WrittenFiles
from evalhub.core.errors import ImportRejected
from evalhub.projects.models import Project
from evalhub.prompts.models import Prompt, PromptSet
from evalhub.prompts.parsers import PromptRow, parse_prompts


def _load_source_images(rows: list[PromptRow], images: FileSource | None) -> dict[str, tuple]:
    wanted = sorted({row.source_image for row in rows if row.source_image})
    if not wanted:
        return {}
    if images is None:
        raise ImportRejected(
            "Prompts name source images but no image folder or zip was given.",
            details=[f"source_image: {name}" for name in wanted[:20]],
        )
    available = set(images.names())
    loaded, errors = {}, []
    for name in wanted:
        if name not in available:
            errors.append(f"source_image {name!r} is not in the image folder or zip")
            continue
        data = images.read(name)
        try:
            loaded[name] = (data, image_inspect(data, name=name))
        except InvalidImage as exc:
            errors.append(str(exc))
    if errors:
        raise ImportRejected("Some source images are missing or invalid.", details=errors)
    return loaded


def prompt_set_import(
    *,
    project: Project,
    name: str,
    data: bytes,
    fmt: str,
    description: str = "",
    created_by: AbstractBaseUser | None = None,
    images: FileSource | None = None,
) -> PromptSet:
    """Create a prompt set from a CSV, JSONL or text file: all prompts, or none."""
    rows = parse_prompts(data, fmt=fmt)
    if PromptSet.objects.filter(project=project, name=name).exists():
        raise ImportRejected(f"Project {project.slug} already has a prompt set named {name!r}.")
    source_images = _load_source_images(rows, images)
    with WrittenFiles() as written, transaction.atomic():
        prompt_set = PromptSet.objects.create(
            project=project, name=name, description=description, created_by=created_by
        )
        blobs = {
            image_name: blob_store(data=payload, info=info, on_new_file=written.add)
            for image_name, (payload, info) in source_images.items()
        }
        blobs_after_store([blob.id for blob in blobs.values()])
        Prompt.objects.bulk_create(
            Prompt(
                prompt_set=prompt_set,
                position=position,
                text=row.text,
                category=row.category,
                tags=list(row.tags),
                source_image=blobs.get(row.source_image),
                metadata=row.metadata,
            )
            for position, row in enumerate(rows)
        )
    return prompt_set
