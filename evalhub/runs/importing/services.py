"""Import a run's images or videos from a folder or zip plus a manifest: every file, or none.

Two passes keep memory bounded: the first reads and fully decodes each file to validate it
(and forgets the bytes), the second reads it again and stores it inside one transaction.

A file with a video extension (blobs/video_validation.py ``VIDEO_EXTENSIONS``) is a video: it
is validated with PyAV, stored as a ``VideoBlob``, and its ``Image`` row points at its poster
(the middle frame, an ``ImageBlob``) and at the video. A run holds images or videos, never both
(``GenerationRun.media_kind``, set by the first import). Which files an import takes, refuses
by name or skips is one rule for runs and reference sets (importing/names.py); the files it
skips are listed in its report.

The report (:class:`ImportReport`) counts files against the importing *project* only: bytes
already stored for another project reuse the stored blob (stored once on the server) but count
as new here, so an import never tells whether the same bytes exist elsewhere on the server
(docs/security.md, "Anonymity across projects").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from evalhub.blobs.after_store import blobs_after_store
from evalhub.blobs.models import ImageBlob, VideoBlob
from evalhub.blobs.services import blob_store, image_inspect
from evalhub.blobs.sources import DamagedEntry, FileSource, SourceProblems
from evalhub.blobs.validation import ImageInfo, InvalidImage
from evalhub.blobs.video_services import video_inspect, video_store, videos_after_store
from evalhub.blobs.video_validation import InvalidVideo, VideoInfo
from evalhub.blobs.written_files import WrittenFiles
from evalhub.core.bounded import in_chunks
from evalhub.core.errors import ImportRejected
from evalhub.core.text import counted
from evalhub.prompts.models import Prompt
from evalhub.runs.importing.manifest import (
    BadLine,
    ManifestRead,
    ManifestRow,
    manifest_find,
    manifest_read_all,
)
from evalhub.runs.importing.names import (
    SKIPPED_NAMES_LISTED,
    Role,
    file_role,
    is_system_file,
    media_kind,
    names_shown,
    refusal,
)
from evalhub.runs.models import (
    GenerationRun,
    Image,
    MediaKind,
    ReferenceSet,
    RunSource,
    RunStatus,
)
from evalhub.runs.previews import images_after_store


@dataclass(frozen=True)
class ImportReport:
    """``images_created``: rows (run images, or files added to a reference set, which holds
    each file once: a file it already held, or one repeated in the import, is not added);
    ``blobs_created``: distinct files the importing project did not hold before;
    ``duplicates_of_existing_blobs``: for a run, the rest of its rows, files whose bytes the
    project already held (in any of its runs, reference sets or prompts' sources) or repeated
    within the import; for a reference set, the distinct files the project already held. Both
    counts are per project: bytes stored only for other projects count as new.
    ``files_skipped``: files of the folder or zip that the import did not take
    (importing/names.py): for a run, those its manifest does not list (nor the manifest
    itself); for a reference set, those that are not image or video files;
    ``skipped_files``: the first ``SKIPPED_NAMES_LISTED`` of their names, sorted."""

    images_created: int
    blobs_created: int
    duplicates_of_existing_blobs: int
    files_skipped: int = 0
    skipped_files: tuple[str, ...] = ()


def held_by_project(project_id: int, image_shas: set[str], video_shas: set[str]
                    ) -> set[str]:
    """The content hashes among ``image_shas`` and ``video_shas`` that project
    ``project_id`` already holds: an image or video of one of its runs or reference sets, or
    a prompt's source. Never looks at other projects (one query per kind and chunk of hashes:
    core/bounded.py)."""
    held: set[str] = set()
    for blobs, shas, image_field, reference_field, prompt_field in (
            (ImageBlob, image_shas, "blob", "images", "source_image"),
            (VideoBlob, video_shas, "video", "videos", "source_video")):
        file = OuterRef("pk")
        in_project = blobs.objects.filter(
            Q(Exists(Image.objects.filter(**{image_field: file}, run__project_id=project_id)))
            | Q(Exists(ReferenceSet.objects.filter(**{reference_field: file},
                                                   project_id=project_id)))
            | Q(Exists(Prompt.objects.filter(**{prompt_field: file},
                                             prompt_set__project_id=project_id))))
        held |= _shas_among(in_project, shas)
    return held


def _shas_among(blobs: QuerySet, shas: set[str]) -> set[str]:
    """The hashes among ``shas`` of the blobs of ``blobs``: an import hashes every file, and
    70,000 hashes in one ``IN`` pass the database's bound-parameter limit (core/bounded.py)."""
    return {sha for part in in_chunks(blobs, "sha256", shas)
            for sha in part.values_list("sha256", flat=True)}


def _split(infos) -> tuple[set[str], set[str]]:
    """(image hashes, video hashes) of validated files."""
    videos = {i.sha256 for i in infos if isinstance(i, VideoInfo)}
    return {i.sha256 for i in infos if not isinstance(i, VideoInfo)}, videos


def _manifest_rows(source: FileSource, structure: SourceProblems, manifest: bytes | None,
                   manifest_name: str, outputs: str) -> tuple[ManifestRead, str | None]:
    """The manifest's good rows, its bad lines' problems and the files they name (reported
    with the files'), and the manifest's name in ``source`` (None when given apart).
    ``outputs``: what the run takes, as an empty manifest's refusal says it ("videos").
    Without a manifest nothing else can be checked: its refusal says the source's structural
    problems (``structure``) too."""
    try:
        in_source = None
        if manifest is None:
            manifest_name = in_source = manifest_find(source.names())
            if manifest_name in structure.unreadable:  # e.g. two manifest.csv entries
                raise ImportRejected("The manifest cannot be read; nothing was imported.")
            try:
                manifest = source.read(manifest_name)
            except DamagedEntry as exc:
                raise ImportRejected("The manifest cannot be read; nothing was imported.",
                                     details=[str(exc)]) from exc
        found = manifest_read_all(manifest, name=manifest_name)
        if not found.rows and not found.errors:
            raise ImportRejected(f"{manifest_name} lists no {outputs}.")
    except ImportRejected as exc:
        if not structure:
            raise
        raise ImportRejected(" ".join([*structure.sentences, exc.message]),
                             details=[*structure.details, *exc.details]) from exc
    return found, in_source


def _skipped(names: list[str]) -> tuple[int, tuple[str, ...]]:
    """The report's ``files_skipped`` and ``skipped_files`` for these names."""
    return len(names), tuple(sorted(names)[:SKIPPED_NAMES_LISTED])


_MANIFEST_LINE = re.compile(r"manifest line (\d+)\b")


@dataclass
class _Problems:
    """An import's problems: first the folder's or zip's structural problems (``source``:
    sources.py ``SourceProblems``, entry by entry), then the others, each with the manifest
    line it belongs to (None: the whole manifest), said in manifest line order, then those
    without a line in the order found: the checks run by kind (prompts, then files), not by
    line."""

    source: SourceProblems = field(default_factory=SourceProblems)
    found: list[tuple[int | None, str]] = field(default_factory=list)

    def add(self, message: str, line: int | None = None) -> None:
        self.found.append((line, message))

    def add_manifest(self, messages: list[str]) -> None:
        """The manifest reader's problems, whose line is in their words (manifest.py)."""
        for message in messages:
            match = _MANIFEST_LINE.match(message)
            self.add(message, int(match.group(1)) if match else None)

    def __bool__(self) -> bool:
        return bool(self.source) or bool(self.found)

    def __len__(self) -> int:
        return len(self.source.details) + len(self.found)

    def in_order(self) -> list[str]:
        # sorted() is stable: problems of one line keep the order they were found in.
        ordered = sorted(self.found, key=lambda p: (p[0] is None, p[0] or 0))
        return [*self.source.details, *(message for _, message in ordered)]

    def refusal(self, what: str) -> ImportRejected:
        """Every problem in one refusal, opened by what kinds of structural problem the
        source has (``what``: "The import into run 'r'")."""
        return ImportRejected(
            " ".join([*self.source.sentences,
                      f"{what} has {counted(len(self), 'problem')}; nothing was imported."]),
            details=self.in_order(),
        )


def _resolve_prompts(run: GenerationRun, rows: list[ManifestRow], errors: _Problems,
                     bad_lines: list[BadLine]) -> dict:
    """Each good row's prompt, by line; an unknown prompt is an error, also on a bad line (its
    other problems are the manifest's), so that fixing a line reveals no second round."""
    prompts = list(Prompt.objects.filter(prompt_set=run.prompt_set).only("id", "text"))
    by_text = {p.text: p for p in prompts}
    by_id = {p.id: p for p in prompts}

    def find(line: int, text: str, prompt_id: int | None) -> Prompt | None:
        prompt = by_id.get(prompt_id) if prompt_id is not None else by_text.get(text)
        if prompt is None:
            shown = f"prompt_id {prompt_id}" if prompt_id is not None else repr(text)
            errors.add(f"manifest line {line}: unknown prompt {shown} "
                       f"(not in prompt set {run.prompt_set.name!r})", line)
        return prompt

    resolved = {}
    for row in rows:
        if (prompt := find(row.line, row.prompt, row.prompt_id)) is not None:
            resolved[row.line] = prompt
    for bad in bad_lines:
        if bad.prompt or bad.prompt_id is not None:  # else it names no prompt it could read
            find(bad.line, bad.prompt, bad.prompt_id)
    return resolved


def _media_kind(run: GenerationRun, rows: list[ManifestRow], errors: _Problems) -> str:
    """The kind of every listed file (all images or all videos), checked against the run's.
    Both kinds: the files of the kind with fewer (images on a tie) are named, with their
    lines, as the likely mistakes."""
    by_kind: dict[str, list[ManifestRow]] = {}
    for row in rows:
        by_kind.setdefault(media_kind(row.file), []).append(row)
    if len(by_kind) > 1:
        images, videos = by_kind[MediaKind.IMAGE], by_kind[MediaKind.VIDEO]
        few, many = (images, videos) if len(images) <= len(videos) else (videos, images)
        few_kind, many_kind = ((MediaKind.IMAGE, MediaKind.VIDEO) if few is images
                               else (MediaKind.VIDEO, MediaKind.IMAGE))
        named = names_shown([f"{row.file} on line {row.line}" for row in few])
        errors.add("the manifest lists both images and videos; a run holds one kind "
                   f"({counted(len(many), many_kind)}, {counted(len(few), few_kind)}: "
                   f"{named})")
        return run.media_kind
    kind = next(iter(by_kind)) if by_kind else run.media_kind
    if kind != run.media_kind and run.images.exists():
        errors.add(f"run {run.name!r} holds {run.media_kind}s; this manifest lists {kind}s")
    return kind


def _inspect(source: FileSource, name: str) -> ImageInfo | VideoInfo:
    """Validate one file as its name says (importing/names.py): a video, an image, or, for a
    format EvalHub does not take, a refusal by its name before it is read."""
    refused = refusal(name)
    if refused is not None:
        raise refused
    data = source.read(name)
    if file_role(name) == Role.VIDEO:
        return video_inspect(data, name=name)
    return image_inspect(data, name=name)


def _validate_rows(
    run: GenerationRun, source: FileSource, structure: SourceProblems, manifest: ManifestRead,
    *, skip_existing: bool,
) -> tuple[list[tuple[ManifestRow, Prompt]], dict[str, ImageInfo | VideoInfo], str]:
    """Every problem in one answer: the folder's or zip's structural problems (``structure``:
    escaping, duplicated or oversized entries, whose files are never read), the bad lines, the
    unknown prompts, repeats, and the problem of every file the manifest names, whatever else
    is wrong with its line (the file and the prompt of a line with a bad seed are checked too,
    as is the file of a line with an unknown prompt, so that fixing the lines reveals no
    second round of problems). Files are read one at a time and forgotten: only what
    validation found about each is kept."""
    rows = manifest.rows
    errors = _Problems(source=structure)
    errors.add_manifest(manifest.errors)
    kind = _media_kind(run, rows, errors)
    prompts = _resolve_prompts(run, rows, errors, manifest.bad_lines)
    available = set(source.names())
    existing = set(run.images.values_list("prompt_id", "seed"))
    seen: dict[tuple[int, int], int] = {}
    infos: dict[str, ImageInfo | VideoInfo] = {}
    # Files found invalid: their problem is said once (a structural one already is).
    invalid: set[str] = set(structure.unreadable)

    def checked(line: int, file: str, *, inspect: bool = True) -> bool:
        """Whether ``file`` is there and (when ``inspect``) valid; else its problem noted."""
        if file not in available:
            errors.add(f"manifest line {line}: file {file!r} not found", line)
            return False
        if not inspect or file in infos:
            return True
        if file in invalid:
            return False
        try:
            infos[file] = _inspect(source, file)
        except (InvalidImage, InvalidVideo) as exc:
            errors.add(str(exc), line)  # said once, at the first line naming the file
            invalid.add(file)
            return False
        return True

    accepted = []
    for row in rows:
        prompt = prompts.get(row.line)
        key = (prompt.id, row.seed) if prompt is not None else None
        # A row the run holds already, when skipping those, is kept as it is: its file is
        # not read.
        skipped = skip_existing and key in existing
        valid = checked(row.line, row.file, inspect=not skipped)
        if key is None:
            continue  # unknown prompt: said by _resolve_prompts
        if key in seen:
            errors.add(
                f"manifest line {row.line}: prompt and seed {row.seed} repeat line {seen[key]}",
                row.line,
            )
            continue
        seen[key] = row.line
        if key in existing:
            if not skip_existing:
                # The run's kind: what it holds is what this row would add to.
                errors.add(
                    f"manifest line {row.line}: run already has {_a(run.media_kind)} for this "
                    f"prompt and seed {row.seed}",
                    row.line,
                )
            continue
        if valid:
            accepted.append((row, prompt))
    for bad in manifest.bad_lines:
        if bad.file:
            checked(bad.line, bad.file)
    if errors:
        raise errors.refusal(f"The import into run {run.name!r}")
    return accepted, infos, kind


def run_images_import(
    *,
    run: GenerationRun,
    source: FileSource,
    manifest: bytes | None = None,
    manifest_name: str = "manifest.csv",
    skip_existing: bool = False,
) -> ImportReport:
    """Attach the images (or videos) listed in the manifest to ``run``, atomically.

    Files whose bytes are already stored (in this or any run) reuse the stored blob. The
    report counts them against ``run``'s project only (:class:`ImportReport`).
    """
    if run.source != RunSource.IMPORTED:
        raise ImportRejected(f"Run {run.name!r} is generated: only imported runs take images "
                             "(its images are its generator's, for its prompts and seeds).")
    # The zip's structural problems are listed with every other (sources.py).
    structure = source.take_problems()
    found, manifest_in_source = _manifest_rows(source, structure, manifest, manifest_name,
                                               _outputs(run))
    accepted, infos, kind = _validate_rows(run, source, structure, found,
                                           skip_existing=skip_existing)
    listed = ({row.file for row in found.rows} | {bad.file for bad in found.bad_lines}
              | {manifest_in_source})
    files_skipped, skipped_files = _skipped([n for n in source.names() if n not in listed])
    shas = {i.sha256 for i in infos.values()}
    in_project = held_by_project(run.project_id, *_split(infos.values()))
    known = (_shas_among(ImageBlob.objects.all(), shas)
             | _shas_among(VideoBlob.objects.all(), shas))
    with WrittenFiles() as written, transaction.atomic():
        blobs: dict[str, ImageBlob] = {}
        videos: dict[str, VideoBlob] = {}
        for file_name, info in infos.items():
            if isinstance(info, VideoInfo):
                if info.sha256 not in videos:
                    videos[info.sha256] = video_store(
                        data=source.read(file_name), info=info, name=file_name,
                        on_new_file=written.add)
                    blobs[info.sha256] = videos[info.sha256].poster
            elif info.sha256 not in blobs:
                blobs[info.sha256] = blob_store(
                    data=source.read(file_name), info=info, on_new_file=written.add
                )
        created = Image.objects.bulk_create(
            Image(
                run=run,
                prompt=prompt,
                seed=row.seed,
                blob=blobs[infos[row.file].sha256],
                video=videos.get(infos[row.file].sha256),
                metadata={**row.metadata, "source_file": row.file},
            )
            for row, prompt in accepted
        )
        if kind != run.media_kind:
            GenerationRun.objects.filter(pk=run.pk).update(media_kind=kind)
            run.media_kind = kind
        _run_refresh_counts(run)
        new_blob_ids = [b.id for sha, b in blobs.items() if sha not in known]
        # Previews come from each image's own task (below), not the blob's.
        blobs_after_store(new_blob_ids, previews=False)
        videos_after_store([v.id for sha, v in videos.items() if sha not in known])
        # Every image, known bytes too: what its payloads show may not depend on what other
        # projects hold (runs/previews.py).
        images_after_store(_created_ids(run, created))
    new_to_project = len(set(blobs) - in_project)
    return ImportReport(
        images_created=len(accepted),
        blobs_created=new_to_project,
        duplicates_of_existing_blobs=len(accepted) - new_to_project,
        files_skipped=files_skipped, skipped_files=skipped_files,
    )


def _a(kind: str) -> str:
    """``"an image"``, ``"a video"``."""
    return f"an {kind}" if kind == MediaKind.IMAGE else f"a {kind}"


def _outputs(run: GenerationRun) -> str:
    """What the run takes, in a message: its kind once it holds outputs (or is a video run),
    else either ("images or videos": its first import decides)."""
    if run.media_kind == MediaKind.VIDEO or run.images.exists():
        return run.outputs_noun
    return "images or videos"


def _created_ids(run: GenerationRun, created: Sequence[Image]) -> list[int]:
    """The ids of the rows ``bulk_create`` inserted into ``run``: set on them where the database
    returns them (PostgreSQL; SQLite from 3.35), else read back by their unique (prompt, seed),
    so that no image is left without its preview task."""
    if all(image.pk is not None for image in created):
        return [image.pk for image in created]
    keys = {(image.prompt_id, image.seed) for image in created}
    rows = in_chunks(Image.objects.filter(run=run), "prompt_id",
                     {prompt for prompt, _ in keys})
    return [pk for part in rows for pk, prompt, seed in part.values_list("pk", "prompt_id", "seed")
            if (prompt, seed) in keys]


def run_create_and_import(
    *,
    create: Callable[[], GenerationRun],
    source: FileSource,
    manifest: bytes | None = None,
    manifest_name: str = "manifest.csv",
) -> tuple[GenerationRun, ImportReport]:
    """Register a run (``create``, e.g. runs.services.run_create) and import its images in one
    transaction: a rejected import (a bad file, a decompression bomb, an unknown prompt) leaves
    no empty run behind. The API's one-request import and the CLI work this way."""
    with transaction.atomic():
        run = create()
        report = run_images_import(run=run, source=source, manifest=manifest,
                                   manifest_name=manifest_name)
    return run, report


def _run_refresh_counts(run: GenerationRun) -> None:
    done = run.images.count()
    fields = {"items_done": done}
    if run.source == RunSource.IMPORTED:
        fields |= {"items_total": done, "status": RunStatus.COMPLETED,
                   "finished_at": timezone.now()}
    GenerationRun.objects.filter(pk=run.pk).update(**fields)
    for name, value in fields.items():
        setattr(run, name, value)


def reference_set_import(*, reference_set: ReferenceSet, source: FileSource) -> ImportReport:
    """Add every image file, or every video file, of a folder or zip to a reference set,
    atomically.

    Which files are taken is the rule of every import (importing/names.py): files with an
    image extension must be valid images, files with a video extension valid videos (the same
    validation as a run's videos: ``blobs/video_validation.py``); a file of another image or
    video format (HEIC, AVI ...) refuses the import, named; other files (README, CSV,
    ``.DS_Store``, ``__MACOSX/``) are skipped and listed in the report. A set holds one kind
    (``ReferenceSet.media_kind``, set by its first import): images for FID/KID/CMMD, videos
    for FVD. Every problem is listed in one refusal: both kinds at once, the set's other
    kind, every invalid or refused file, and the folder's or zip's structural problems
    (sources.py: escaping, duplicated or oversized entries, never read). ``images_created``
    counts the files added, of either kind.
    """
    structure = source.take_problems()
    by_role: dict[Role, list[str]] = {role: [] for role in Role}
    for name in sorted(source.names()):
        if name not in structure.unreadable:  # said with the structure's problems
            by_role[Role.OTHER if is_system_file(name) else file_role(name)].append(name)
    video_names, image_names = by_role[Role.VIDEO], by_role[Role.IMAGE]
    kind = MediaKind.VIDEO if video_names else MediaKind.IMAGE
    # The refusal's first sentences, then ``errors`` as details.
    problems: list[str] = list(structure.sentences)
    errors: list[str] = list(structure.details)
    if video_names and image_names:
        problems.append("The folder or zip holds both images and videos; a reference set "
                        "holds one kind (images for FID, KID and CMMD; videos for FVD).")
        errors += [f"images ({len(image_names)}): {names_shown(image_names)}",
                   f"videos ({len(video_names)}): {names_shown(video_names)}"]
    else:
        current = _reference_set_kind(reference_set)
        if current is not None and current != kind and (video_names or image_names):
            problems.append(f"Reference set {reference_set.name!r} holds {current}s; this "
                            f"folder or zip holds {kind}s. Import them into another set.")
    infos: dict[str, ImageInfo | VideoInfo] = {}
    invalid: list[str] = []
    for name in sorted(image_names + video_names + by_role[Role.REFUSED_IMAGE]
                       + by_role[Role.REFUSED_VIDEO]):
        try:
            infos[name] = _inspect(source, name)
        except (InvalidImage, InvalidVideo) as exc:
            invalid.append(str(exc))
    if invalid:
        problems.append("Some reference files are invalid or of a format not accepted.")
        errors += invalid
    if problems:
        raise ImportRejected(" ".join([*problems, "Nothing was imported."]), details=errors)
    files_skipped, skipped_files = _skipped(by_role[Role.OTHER])
    if not infos:
        shown = names_shown(skipped_files, total=files_skipped)
        raise ImportRejected("The folder or zip contains no image or video files.",
                             details=[f"skipped: {shown}"] if files_skipped else [])
    max_images = settings.EVALHUB_MAX_REFERENCE_IMAGES
    held = reference_set.videos if kind == MediaKind.VIDEO else reference_set.images
    shas = {i.sha256 for i in infos.values()}
    # A file the set already holds is not added again (a set holds each file once).
    model = VideoBlob if kind == MediaKind.VIDEO else ImageBlob
    stored_pks = {sha: pk for part in in_chunks(model.objects.all(), "sha256", shas)
                  for sha, pk in part.values_list("sha256", "pk")}
    known = set(stored_pks)
    in_set = _in_set(held, stored_pks)
    if held.count() + len(shas - in_set) > max_images:
        raise ImportRejected(f"A reference set holds at most {max_images} {kind}s.")
    in_project = held_by_project(reference_set.project_id, *_split(infos.values()))
    with WrittenFiles() as written, transaction.atomic():
        stored: dict[str, ImageBlob | VideoBlob] = {}
        for name, info in infos.items():
            if info.sha256 in stored:
                continue
            if isinstance(info, VideoInfo):
                stored[info.sha256] = video_store(data=source.read(name), info=info, name=name,
                                                  on_new_file=written.add)
            else:
                stored[info.sha256] = blob_store(data=source.read(name), info=info,
                                                 on_new_file=written.add)
        held.add(*stored.values())
        if kind != reference_set.media_kind:
            ReferenceSet.objects.filter(pk=reference_set.pk).update(media_kind=kind)
            reference_set.media_kind = kind
        new = [item for sha, item in stored.items() if sha not in known]
        if kind == MediaKind.VIDEO:
            # Like a run's new videos: posters get their display copies, videos their
            # renditions (so that the same bytes imported into a run later have them too).
            blobs_after_store([video.poster_id for video in new])
            videos_after_store([video.id for video in new])
        else:
            blobs_after_store([blob.id for blob in new])
    # Counted against the project only (ImportReport): never whether other projects hold them.
    new_to_project = len(set(stored) - in_project)
    return ImportReport(images_created=len(set(stored) - in_set), blobs_created=new_to_project,
                        duplicates_of_existing_blobs=len(stored) - new_to_project,
                        files_skipped=files_skipped, skipped_files=skipped_files)


def _in_set(held, stored_pks: dict[str, int]) -> set[str]:
    """The hashes among ``stored_pks`` (hash: id of the stored blob) of the files the set
    ``held`` (its ``images`` or ``videos``) holds. Looked up by id in the set's own table, a
    chunk at a time: joined to the blobs and filtered on 10,000 hashes, PostgreSQL scans every
    blob once per chunk (minutes for a 70,000-file import; by id, seconds)."""
    column = f"{held.target_field_name}_id"
    rows = held.through.objects.filter(**{held.source_field_name: held.instance})
    sha_of = {pk: sha for sha, pk in stored_pks.items()}
    return {sha_of[pk] for part in in_chunks(rows, column, sha_of)
            for pk in part.values_list(column, flat=True)}


def _reference_set_kind(reference_set: ReferenceSet) -> str | None:
    """What the set holds now (None while it is empty: its first import decides)."""
    if reference_set.videos.exists():
        return MediaKind.VIDEO
    if reference_set.images.exists():
        return MediaKind.IMAGE
    return None
