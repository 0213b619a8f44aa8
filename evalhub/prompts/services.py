"""Creating prompt sets, atomically, from parsed prompt files.

An editing prompt's source (column ``source_image`` or ``source_video``) is a file of the
folder or zip given with the prompts: an image, or a video by its extension, validated like a
run's outputs and stored content-addressed; a source video's poster is the prompt's
``source_image`` (evalhub/prompts/models.py).
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from evalhub.blobs.after_store import blobs_after_store
from evalhub.blobs.models import ImageBlob, VideoBlob
from evalhub.blobs.services import blob_store, image_inspect
from evalhub.blobs.sources import FileSource, SourceProblems
from evalhub.blobs.validation import ImageInfo, InvalidImage
from evalhub.blobs.video_services import video_inspect, video_store, videos_after_store
from evalhub.blobs.video_validation import InvalidVideo, VideoInfo, is_video_name
from evalhub.blobs.written_files import WrittenFiles
from evalhub.core.errors import ImportRejected, NameTaken
from evalhub.projects.models import Project
from evalhub.prompts.models import Prompt, PromptSet
from evalhub.prompts.parsers import PromptRow, parse_prompts


def _load_source_images(rows: list[PromptRow], images: FileSource | None,
                        problems: SourceProblems
                        ) -> dict[str, tuple[bytes, ImageInfo | VideoInfo]]:
    """Each named source file's bytes and what validation found: images through the image
    validation, videos (by extension) through the same validation as a run's videos.
    ``problems``: the source's structural problems (blobs/sources.py), listed first."""
    wanted = sorted({row.source_image for row in rows if row.source_image})
    if not wanted:
        if problems:
            raise problems.refusal()
        return {}
    if images is None:
        raise ImportRejected(
            "Prompts name source images or videos but no folder or zip was given.",
            details=[f"source: {name}" for name in wanted[:20]],
        )
    available = set(images.names())
    loaded: dict[str, tuple[bytes, ImageInfo | VideoInfo]] = {}
    errors = list(problems.details)
    for name in wanted:
        if name not in available:
            errors.append(f"source {name!r} is not in the folder or zip")
            continue
        if name in problems.unreadable:
            continue  # listed among the source's problems; never read
        try:
            data = images.read(name)  # a zip entry damaged in the zip is its problem too
            info = (video_inspect(data, name=name) if is_video_name(name)
                    else image_inspect(data, name=name))
        except (InvalidImage, InvalidVideo) as exc:
            errors.append(str(exc))
            continue
        loaded[name] = (data, info)
    if errors:
        raise ImportRejected(" ".join([*problems.sentences,
                                       "Some source images or videos are missing or invalid."]),
                             details=errors)
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
    """Create a prompt set from a CSV, JSONL or text file: all prompts, or none.

    A folder or zip with structural problems is refused even when no prompt names a file in
    it (it was given for a reason), its problems listed with the prompt file's own, so that
    one refusal says them all."""
    problems = images.take_problems() if images is not None else SourceProblems()
    try:
        rows = parse_prompts(data, fmt=fmt)
    except ImportRejected as exc:
        if not problems:
            raise
        raise ImportRejected(" ".join([*problems.sentences, exc.message]),
                             details=[*problems.details, *exc.details]) from exc
    if PromptSet.objects.filter(project=project, name=name).exists():
        raise NameTaken("name", f"Project {project.slug} already has a prompt set named "
                                f"{name!r}.")
    source_images = _load_source_images(rows, images, problems)
    with WrittenFiles() as written, transaction.atomic():
        prompt_set = PromptSet.objects.create(
            project=project, name=name, description=description, created_by=created_by
        )
        blobs: dict[str, ImageBlob] = {}
        videos: dict[str, VideoBlob] = {}
        for source_name, (payload, info) in source_images.items():
            if isinstance(info, VideoInfo):
                videos[source_name] = video_store(data=payload, info=info, name=source_name,
                                                  on_new_file=written.add)
                blobs[source_name] = videos[source_name].poster
            else:
                blobs[source_name] = blob_store(data=payload, info=info,
                                                on_new_file=written.add)
        # Display copies (posters included) and, for source videos, the renditions the
        # annotator page plays: both idempotent, so bytes stored before are only checked.
        blobs_after_store([blob.id for blob in blobs.values()])
        videos_after_store(sorted({video.id for video in videos.values()}))
        Prompt.objects.bulk_create(
            Prompt(
                prompt_set=prompt_set,
                position=position,
                text=row.text,
                category=row.category,
                tags=list(row.tags),
                source_image=blobs.get(row.source_image),
                source_video=videos.get(row.source_image),
                metadata=row.metadata,
            )
            for position, row in enumerate(rows)
        )
    return prompt_set
