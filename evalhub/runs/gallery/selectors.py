"""Reads of the side-by-side gallery and of the image page.

The gallery shows run ``left`` on the left and run ``right`` on the right. A *pair* is the two
runs' images of the same prompt (the same prompt row: runs of one prompt set) and the same
seed. Its *votes* are the live human judgments, on one criterion, of every campaign task over
exactly those two images, in the campaigns of the project, less the votes of annotators a
campaign excluded (as the leaderboards leave them out). Tasks store outcomes canonically
(``a`` = the task's ``image_a``); here they are turned into ``left`` / ``right``.

Formulas (n = votes of the pair, n_k = votes for outcome k among left, right, tie, both_bad):

- human outcome: the k with the largest n_k; ``split`` when two outcomes share the largest
  count; none without votes;
- annotator disagreement = 1 - max_k n_k / n: 0 when unanimous, 0.5 for two outcomes half each,
  at most 0.75; defined from n >= 2 (one vote cannot disagree);
- metric disagreement = 1 - n_m / n, where m is the metric judge's outcome on the pair (a
  campaign's ``metric:<judge>`` judgment, CLIP-score by default): the share of the human votes
  that the metric contradicts (0: every vote agrees with the metric, 1: none does); defined when
  the pair has a metric judgment and at least one vote; both are labelled uncalibrated when
  a metric judgment of the pair was scored with random weights (``metric_calibrated`` False),
  as the image page labels that judge;
- LPIPS: the stored ``PairMetric`` distance of the two images, either order, the most recent
  backbone's; unitless, 0 for identical images.

Every function takes run ids that the caller has checked to belong to the project
(:func:`gallery_run_options` lists exactly those) and the project id, which every vote query
filters on as well. A page costs a fixed number of queries whatever the number of images: the
pairs are two ``values_list`` reads joined in Python, and everything else is one query per
kind of value, for the page's pairs only unless the sort or filter needs them all.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.urls import reverse
from django.utils.safestring import SafeString

from evalhub.campaigns.models import AnnotatorFlag, JudgeKind, Judgment, Outcome
from evalhub.campaigns.serving.payloads import image_payload
from evalhub.evaluation.models import ImageMetric, MetricName, PairMetric
from evalhub.evaluation.selectors import MetricValue, image_metric_values
from evalhub.prompts.models import Prompt
from evalhub.runs.gallery.display import readable_rows
from evalhub.runs.labels import run_label
from evalhub.runs.models import GenerationRun, Image, RunStatus

PAGE_SIZE = 24
DEFAULT_CRITERION = "overall"
DEFAULT_JUDGE = MetricName.CLIP_SCORE.value
LEFT, RIGHT, TIE, BOTH_BAD, SPLIT = "left", "right", "tie", "both_bad", "split"
VOTE_OUTCOMES = (LEFT, RIGHT, TIE, BOTH_BAD)
# What the outcome filter offers: the human outcome of a pair, or no votes at all.
OUTCOME_FILTERS = {
    LEFT: "humans prefer left", RIGHT: "humans prefer right", TIE: "humans: tie",
    BOTH_BAD: "humans: both bad", SPLIT: "humans split", "unvoted": "no votes yet",
}
SORTS = {
    "prompt": "prompt order",
    "metric_disagreement": "metric judge vs humans: most disagreement first",
    "annotator_disagreement": "annotators among themselves: most disagreement first",
    "lpips": "LPIPS distance: most similar first",
    "-lpips": "LPIPS distance: most different first",
}
_VOTE_SORTS = ("metric_disagreement", "annotator_disagreement")


# --- typed results ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RunOption:
    """A run the gallery can show, with what tells it apart from the others."""

    id: int
    name: str
    model_id: int
    model: str
    checkpoint: str
    step: int | None
    prompt_set_id: int
    media_kind: str = "image"
    status: str = RunStatus.COMPLETED
    has_outputs: bool = True  # at least one image (or video) to show
    prompt_set: str = ""  # the prompt set's name

    @property
    def label(self) -> str:
        """The run as the campaign form's run list names it (``runs.labels.run_label``)."""
        return run_label(model=self.model, checkpoint=self.checkpoint, step=self.step,
                         run=self.name, prompt_set=self.prompt_set)


@dataclass(frozen=True)
class Votes:
    """Human votes on one pair, in gallery terms (left / right run)."""

    left: int = 0
    right: int = 0
    tie: int = 0
    both_bad: int = 0

    @property
    def total(self) -> int:
        return self.left + self.right + self.tie + self.both_bad

    def count(self, outcome: str) -> int:
        return getattr(self, outcome)

    @property
    def outcome(self) -> str | None:
        """The most voted outcome; ``split`` when two share the top count; None without votes."""
        if not self.total:
            return None
        counts = sorted(((self.count(k), k) for k in VOTE_OUTCOMES), reverse=True)
        return SPLIT if counts[0][0] == counts[1][0] else counts[0][1]

    @property
    def disagreement(self) -> float | None:
        """1 - max_k n_k / n, for n >= 2 votes (module doc)."""
        if self.total < 2:
            return None
        return 1.0 - max(self.count(k) for k in VOTE_OUTCOMES) / self.total


NO_VOTES = Votes()


@dataclass(frozen=True)
class PairRow:
    """The two image ids of one (prompt, seed), and what orders it."""

    left_id: int
    right_id: int
    prompt_id: int
    seed: int
    position: int

    @property
    def key(self) -> tuple[int, int]:
        return self.left_id, self.right_id


@dataclass(frozen=True)
class PairJudgments:
    """What campaigns say about pairs: human votes and the metric judge's outcome;
    ``metric_uncalibrated`` holds the pairs a metric judgment of which came from random
    weights."""

    votes: dict[tuple[int, int], Votes] = field(default_factory=dict)
    metric: dict[tuple[int, int], str] = field(default_factory=dict)
    metric_uncalibrated: set[tuple[int, int]] = field(default_factory=set)

    def metric_calibrated(self, key: tuple[int, int]) -> bool | None:
        """False when the pair's metric judge scored with random weights; None without one."""
        if key not in self.metric:
            return None
        return key not in self.metric_uncalibrated

    def metric_disagreement(self, key: tuple[int, int]) -> float | None:
        """1 - n_m / n (module doc)."""
        votes, judged = self.votes.get(key, NO_VOTES), self.metric.get(key)
        if judged is None or not votes.total:
            return None
        return 1.0 - votes.count(judged) / votes.total


@dataclass(frozen=True)
class GalleryImage:
    id: int
    url: str
    width: int
    height: int
    tiles: str | None
    clip: MetricValue | None
    href: str  # the image page
    #: None for an image; for a video output (``url`` is then its poster's) what the rating
    #: page's player reads: the rendition's URL, poster, fps, frames, duration, size
    #: (campaigns.serving.payloads.video_payload).
    video: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "url": self.url, "width": self.width, "height": self.height,
                "tiles": self.tiles, "href": self.href, "video": self.video,
                "clip": None if self.clip is None else round(self.clip.value, 4),
                "clip_calibrated": None if self.clip is None else self.clip.calibrated}


@dataclass(frozen=True)
class GalleryItem:
    """One pair as the page shows it."""

    number: int  # 1-based, in the filtered and sorted order
    prompt: str
    category: str
    seed: int
    left: GalleryImage
    right: GalleryImage
    lpips: MetricValue | None
    votes: Votes
    metric_outcome: str | None
    metric_disagreement: float | None
    #: False when the metric judge's scores came from random weights (its outcome and the
    #: disagreement are then uncalibrated); None without a metric judgment.
    metric_calibrated: bool | None = None

    @property
    def annotator_disagreement(self) -> float | None:
        return self.votes.disagreement

    def as_json(self) -> dict[str, Any]:
        votes = self.votes
        return {
            "number": self.number, "prompt": self.prompt, "category": self.category,
            "seed": self.seed, "left": self.left.as_json(), "right": self.right.as_json(),
            "lpips": None if self.lpips is None else round(self.lpips.value, 4),
            "lpips_calibrated": None if self.lpips is None else self.lpips.calibrated,
            "votes": {k: votes.count(k) for k in VOTE_OUTCOMES} | {"total": votes.total},
            "human_outcome": votes.outcome,
            "metric_outcome": self.metric_outcome,
            "metric_calibrated": self.metric_calibrated,
            "metric_disagreement": _rounded(self.metric_disagreement),
            "annotator_disagreement": _rounded(votes.disagreement),
        }


@dataclass(frozen=True)
class GalleryQuery:
    left: int
    right: int
    category: str = ""
    outcome: str = ""
    sort: str = "prompt"
    criterion: str = DEFAULT_CRITERION
    judge: str = DEFAULT_JUDGE
    page: int = 1


@dataclass(frozen=True)
class GalleryPage:
    items: list[GalleryItem]
    total: int  # pairs after the filters
    page: int
    pages: int
    page_size: int

    @property
    def first_number(self) -> int:
        return (self.page - 1) * self.page_size + 1


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


# --- runs -------------------------------------------------------------------------------------


def gallery_run_options(*, project_id: int, model_id: int | None = None) -> list[RunOption]:
    """The project's runs (only ``model_id``'s when given), by model, training step, name."""
    runs = GenerationRun.objects.filter(project_id=project_id)
    if model_id is not None:
        runs = runs.filter(checkpoint__model_id=model_id)
    rows = runs.annotate(
        has_outputs=Exists(Image.objects.filter(run_id=OuterRef("pk")))).order_by(
        "checkpoint__model__name", "checkpoint__training_step", "checkpoint__name",
        "name").values_list(
        "id", "name", "checkpoint__model_id", "checkpoint__model__name", "checkpoint__name",
        "checkpoint__training_step", "prompt_set_id", "media_kind", "status", "has_outputs",
        "prompt_set__name")
    return [RunOption(*row) for row in rows]


#: Runs whose outputs are all there (a partial run's failed items are simply missing): the
#: default pair prefers them to runs still under way. A failed run is never a default: one
#: compares it only on purpose, by picking it.
_FINISHED = (RunStatus.COMPLETED, RunStatus.PARTIAL)


def mixed_media_kinds(left: RunOption, right: RunOption) -> bool:
    """Whether the two runs' outputs differ in kind (images vs videos): the gallery compares
    outputs of one prompt and seed side by side, which is meaningless across kinds."""
    return left.media_kind != right.media_kind


def default_pair(options: list[RunOption], *, model_id: int | None = None
                 ) -> tuple[int, int] | None:
    """Two runs to show when the caller picked none: a model's first and last checkpoint (by
    training step), or else the two last runs (by id).

    Both runs have outputs of the same kind (images or videos: never one of each), neither
    failed, and, where the project allows, they answered the same prompt set (else the page
    has no pair to show). Finished runs are preferred to runs under way: the pair is taken
    among finished runs when two of them make one. None when no two runs qualify.
    """
    shown = [o for o in options if o.has_outputs and o.status != RunStatus.FAILED]
    order = {o.id: index for index, o in enumerate(options)}

    def choose(group: list[RunOption]) -> tuple[tuple[int, ...], tuple[int, int]]:
        """The group's pair and what ranks it against other groups' pairs."""
        if model_id is not None:  # first and last checkpoint; the widest group wins
            first, last = group[0], group[-1]
            return (len(group), order[last.id]), (first.id, last.id)
        older, newer = sorted(group, key=lambda o: o.id)[-2:]
        return (newer.id, older.id), (older.id, newer.id)

    for same_prompts in (True, False):
        for finished_only in (True, False):
            groups: dict[tuple[str, int | None], list[RunOption]] = defaultdict(list)
            for run in shown:
                if run.status in _FINISHED or not finished_only:
                    groups[run.media_kind, run.prompt_set_id if same_prompts else None].append(
                        run)
            found = [choose(group) for group in groups.values() if len(group) >= 2]
            if found:
                return max(found)[1]
    return None


def partner_run(options: list[RunOption], run_id: int) -> int | None:
    """A run to show beside run ``run_id`` when the caller picked only that one (a run page's
    "Gallery" link): another run with outputs of the same kind that did not fail and that
    answered at least one (prompt, seed) that run answered (else the page would have no pair
    to show), preferring finished runs, then runs of the same model, then the newest. None
    when no other run qualifies: the page then shows the run's outputs alone.

    Pairs are of the same prompt row, so only runs of the same prompt set can share an item;
    one query asks which of those do (each stops at its first shared item)."""
    chosen = next((o for o in options if o.id == run_id), None)
    if chosen is None:
        return None
    others = [o for o in options if o.id != run_id and o.has_outputs
              and o.status != RunStatus.FAILED and o.media_kind == chosen.media_kind
              and o.prompt_set_id == chosen.prompt_set_id]
    if not others:
        return None
    shared = Image.objects.filter(run_id=run_id, prompt_id=OuterRef("prompt_id"),
                                  seed=OuterRef("seed"))
    sharing = set(GenerationRun.objects.filter(pk__in=[o.id for o in others]).filter(
        Exists(Image.objects.filter(run_id=OuterRef("pk")).filter(Exists(shared))))
        .values_list("pk", flat=True))
    candidates = [o for o in others if o.id in sharing]
    if not candidates:
        return None
    return max(candidates, key=lambda o: (o.status in _FINISHED, o.model_id == chosen.model_id,
                                          o.id)).id


def project_categories(*, project_id: int) -> list[str]:
    """Prompt categories used in the project's prompt sets, sorted."""
    return list(Prompt.objects.filter(prompt_set__project_id=project_id)
                .exclude(category="").order_by("category")
                .values_list("category", flat=True).distinct())


# --- pairs and what is known about them -----------------------------------------------------


def gallery_pairs(*, left: int, right: int, category: str = "") -> list[PairRow]:
    """Every (prompt, seed) both runs answered, in prompt order then seed (one query)."""
    rows = Image.objects.filter(run_id__in=[left, right])
    if category:
        rows = rows.filter(prompt__category=category)
    found: dict[int, dict[tuple[int, int], tuple[int, int]]] = {left: {}, right: {}}
    for run_id, image_id, prompt_id, seed, position in rows.values_list(
            "run_id", "id", "prompt_id", "seed", "prompt__position"):
        found[run_id][(prompt_id, seed)] = (image_id, position)
    theirs = found[right]
    pairs = [PairRow(image_id, theirs[item][0], item[0], item[1], position)
             for item, (image_id, position) in found[left].items() if item in theirs]
    pairs.sort(key=lambda p: (p.position, p.prompt_id, p.seed))
    return pairs


def pair_judgments(*, project_id: int, left: int, right: int, criterion: str, judge: str,
                   pairs: Iterable[PairRow]) -> PairJudgments:
    """Human votes and the metric judge's outcome for ``pairs`` (one query).

    The query reads the tasks of the two runs (either as run A); with few pairs it is also
    restricted to their images, so a page's read stays small whatever the runs' size.
    """
    pairs = list(pairs)
    wanted = {p.key for p in pairs}
    excluded = AnnotatorFlag.objects.filter(campaign_id=OuterRef("campaign_id"),
                                            annotator_id=OuterRef("annotator_id"),
                                            excluded=True)
    rows = Judgment.objects.filter(
        Q(task__run_a_id=left, task__run_b_id=right) | Q(task__run_a_id=right,
                                                         task__run_b_id=left),
        campaign__project_id=project_id, criterion=criterion, retracted_at__isnull=True,
    ).filter(Q(judge_kind=JudgeKind.HUMAN) & ~Exists(excluded)
             | Q(judge_kind=JudgeKind.METRIC, metric_name=judge))
    if len(pairs) <= PAGE_SIZE:
        rows = rows.filter(task__image_a_id__in={i for p in pairs for i in p.key})
    counts: dict[tuple[int, int], Counter] = defaultdict(Counter)
    metric: dict[tuple[int, int], Counter] = defaultdict(Counter)
    uncalibrated: set[tuple[int, int]] = set()
    for image_a, image_b, kind, outcome, calibrated, n in (
            rows.values_list("task__image_a_id", "task__image_b_id", "judge_kind", "outcome",
                             "metric_calibrated")
            .annotate(n=Count("id")).order_by()):
        if (image_a, image_b) in wanted:  # image A is the left image
            key, side = (image_a, image_b), {Outcome.A: LEFT, Outcome.B: RIGHT}
        elif (image_b, image_a) in wanted:
            key, side = (image_b, image_a), {Outcome.A: RIGHT, Outcome.B: LEFT}
        else:  # a task pairing other seeds, or a pair outside this page
            continue
        gallery_outcome = side.get(outcome, outcome)
        (counts if kind == JudgeKind.HUMAN else metric)[key][gallery_outcome] += n
        # Null (judged before calibration was recorded) counts as calibrated, as on the image
        # page; one judgment from random weights is enough to label the pair's judge.
        if kind == JudgeKind.METRIC and calibrated is False:
            uncalibrated.add(key)
    return PairJudgments(
        votes={key: Votes(**{k: c[k] for k in VOTE_OUTCOMES}) for key, c in counts.items()},
        # Campaigns over the same pair judge it with the same scores: the same outcome.
        metric={key: c.most_common(1)[0][0] for key, c in metric.items()},
        metric_uncalibrated=uncalibrated)


def pair_lpips(*, left: int, right: int, pairs: Iterable[PairRow]
               ) -> dict[tuple[int, int], MetricValue]:
    """LPIPS of each pair (either image order; the most recent value per pair; one query)."""
    pairs = list(pairs)
    wanted = {p.key for p in pairs}
    rows = PairMetric.objects.filter(metric=MetricName.LPIPS)
    if len(pairs) <= PAGE_SIZE:
        ids = {i for p in pairs for i in p.key}
        rows = rows.filter(image_a_id__in=ids, image_b_id__in=ids)
    else:
        both = Image.objects.filter(run_id__in=[left, right]).values("id")
        rows = rows.filter(image_a_id__in=both, image_b_id__in=both)
    found: dict[tuple[int, int], MetricValue] = {}
    for a, b, value, calibrated, backbone in rows.order_by("created_at").values_list(
            "image_a_id", "image_b_id", "value", "calibrated", "backbone_id"):
        key = (a, b) if (a, b) in wanted else (b, a)
        if key in wanted:
            found[key] = MetricValue(value, calibrated, backbone)
    return found


def _sorted(pairs: list[PairRow], sort: str, judgments: PairJudgments | None,
            lpips: dict[tuple[int, int], MetricValue] | None) -> list[PairRow]:
    """Pairs without the sort's value come last; ties keep prompt order (stable sort)."""
    if sort in _VOTE_SORTS:
        assert judgments is not None

        def value(p: PairRow) -> float | None:
            return (judgments.metric_disagreement(p.key) if sort == "metric_disagreement"
                    else judgments.votes.get(p.key, NO_VOTES).disagreement)

        def key(p: PairRow) -> tuple:
            v = value(p)
            return (v is None, -(v or 0.0), -judgments.votes.get(p.key, NO_VOTES).total)

        return sorted(pairs, key=key)
    if sort in ("lpips", "-lpips"):
        assert lpips is not None
        sign = 1.0 if sort == "lpips" else -1.0
        return sorted(pairs, key=lambda p: (p.key not in lpips,
                                            sign * lpips[p.key].value if p.key in lpips else 0))
    return pairs


#: What ``video_payload`` reads of a video and of its poster.
#: The names are the project's own, computed from its id and the blob's (blobs/names.py).
_VIDEO_FIELDS = ("sha256", "fps", "frame_count", "duration_s", "width", "height")
_POSTER_FIELDS = ("sha256",)


def _shown_images(image_ids: Iterable[int]) -> dict[int, Image]:
    """The images a page shows, by id, with what their payload reads (one query: a video
    output's row brings its video and the video's poster)."""
    return {image.pk: image for image in Image.objects.filter(pk__in=list(image_ids))
            .select_related("blob", "prompt", "video", "video__poster")
            .only("id", "seed", "prompt__text", "prompt__category", "blob__sha256",
                  "blob__tiles_format", "blob__width", "blob__height",
                  *(f"video__{name}" for name in _VIDEO_FIELDS),
                  *(f"video__poster__{name}" for name in _POSTER_FIELDS))}


def _gallery_image(image: Image, *, project_id: int, clip: MetricValue | None
                   ) -> GalleryImage:
    payload = image_payload(image.blob, image.video, project_id=project_id)
    return GalleryImage(image.pk, payload["url"], payload["width"], payload["height"],
                        payload["tiles"], clip, image_href(image.pk), payload["video"])


def _page_of(items: Sequence[Any] | QuerySet, number: int) -> Page:
    """Page ``number`` of ``items``, :data:`PAGE_SIZE` at a time, the number clamped to
    ``[1, pages]`` (an address past the end shows the last page). A query is counted and only
    its page's rows are read (LIMIT/OFFSET)."""
    paginator = Paginator(items, PAGE_SIZE)
    return paginator.page(min(max(1, number), paginator.num_pages))


def gallery_page(*, project_id: int, query: GalleryQuery) -> GalleryPage:
    """One page of pairs of ``query.left`` and ``query.right`` (runs of ``project_id``),
    filtered, sorted and with everything the page shows (a fixed number of queries)."""
    pairs = gallery_pairs(left=query.left, right=query.right, category=query.category)
    judgments = lpips = None
    if query.outcome or query.sort in _VOTE_SORTS:
        judgments = pair_judgments(project_id=project_id, left=query.left, right=query.right,
                                   criterion=query.criterion, judge=query.judge, pairs=pairs)
    if query.sort in ("lpips", "-lpips"):
        lpips = pair_lpips(left=query.left, right=query.right, pairs=pairs)
    if query.outcome:
        assert judgments is not None
        pairs = [p for p in pairs if (judgments.votes.get(p.key, NO_VOTES).outcome
                                      or "unvoted") == query.outcome]
    pairs = _sorted(pairs, query.sort, judgments, lpips)
    page = _page_of(pairs, query.page)
    chunk = list(page.object_list)
    if judgments is None:
        judgments = pair_judgments(project_id=project_id, left=query.left, right=query.right,
                                   criterion=query.criterion, judge=query.judge, pairs=chunk)
    if lpips is None:
        lpips = pair_lpips(left=query.left, right=query.right, pairs=chunk)
    image_ids = [i for p in chunk for i in p.key]
    clip = image_metric_values(image_ids=image_ids, metric=MetricName.CLIP_SCORE)
    shown = _shown_images(image_ids)

    def gallery_image(image_id: int) -> GalleryImage:
        return _gallery_image(shown[image_id], project_id=project_id,
                              clip=clip.get(image_id))

    items = []
    for offset, pair in enumerate(chunk):
        if pair.left_id not in shown or pair.right_id not in shown:
            continue  # deleted between the two reads
        prompt = shown[pair.left_id].prompt
        items.append(GalleryItem(
            number=page.start_index() + offset, prompt=prompt.text, category=prompt.category,
            seed=pair.seed, left=gallery_image(pair.left_id),
            right=gallery_image(pair.right_id), lpips=lpips.get(pair.key),
            votes=judgments.votes.get(pair.key, NO_VOTES),
            metric_outcome=judgments.metric.get(pair.key),
            metric_disagreement=judgments.metric_disagreement(pair.key),
            metric_calibrated=judgments.metric_calibrated(pair.key)))
    return GalleryPage(items=items, total=len(pairs), page=page.number,
                       pages=page.paginator.num_pages, page_size=PAGE_SIZE)


@dataclass(frozen=True)
class RunOutput:
    """One output of a run shown alone: its image (or video poster), prompt and seed."""

    image: GalleryImage
    prompt: str
    category: str
    seed: int


@dataclass(frozen=True)
class RunOutputsPage:
    """One page of a run's outputs, in prompt order then seed: the gallery when the project
    has no other run of the same kind to show beside it."""

    items: list[RunOutput]
    total: int
    page: int
    pages: int


def run_outputs_page(*, project_id: int, run_id: int, page: int = 1) -> RunOutputsPage:
    """Page ``page`` (clamped) of run ``run_id``'s outputs (a run of ``project_id``, checked
    by the caller), :data:`PAGE_SIZE` at a time (four queries).

    The outputs are counted, then only the page's ids read (LIMIT/OFFSET): a run of 100,000
    images costs a count, not 100,000 ids on every page view.
    """
    shown_page = _page_of(Image.objects.filter(run_id=run_id, run__project_id=project_id)
                          .order_by("prompt__position", "prompt_id", "seed", "pk")
                          .values_list("pk", flat=True), page)
    chunk = list(shown_page.object_list)
    clip = image_metric_values(image_ids=chunk, metric=MetricName.CLIP_SCORE)
    shown = _shown_images(chunk)
    items = [RunOutput(_gallery_image(shown[pk], project_id=project_id, clip=clip.get(pk)),
                       shown[pk].prompt.text, shown[pk].prompt.category, shown[pk].seed)
             for pk in chunk if pk in shown]
    return RunOutputsPage(items=items, total=shown_page.paginator.count,
                          page=shown_page.number, pages=shown_page.paginator.num_pages)


def image_href(image_id: int) -> str:
    return reverse("gallery-image", kwargs={"image_id": image_id})


# --- the image page ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageMetricRow:
    metric: str
    label: str
    value: float
    calibrated: bool
    backbone_id: str


@dataclass(frozen=True)
class DistanceRow:
    """A stored distance (LPIPS) from this image to another run's image."""

    other_id: int
    other_run: str
    metric: str
    value: float
    calibrated: bool


@dataclass(frozen=True)
class ImageVotes:
    """The human votes one campaign's task (this image against another) received, per
    criterion, from this image's side: won = the other image lost."""

    campaign_id: int
    campaign: str
    criterion: str
    other_id: int
    other_run: str
    won: int = 0
    lost: int = 0
    tie: int = 0
    both_bad: int = 0
    metric_outcomes: dict[str, str] = field(default_factory=dict)  # judge -> won / lost / tie

    @property
    def total(self) -> int:
        return self.won + self.lost + self.tie + self.both_bad


@dataclass(frozen=True)
class ImageRankings:
    """The human best-of-K votes, per campaign and criterion, on the tasks that showed this
    image among K: how often it was ranked at each place. ``ranks[i]`` counts the votes that put
    it (i+1)-th; ``unranked`` the votes that did not place it (a best-of-K pick of another
    image: it was only "not the best"). A rank-all vote places every image."""

    campaign_id: int
    campaign: str
    criterion: str
    k: int
    ranks: tuple[int, ...]
    unranked: int = 0

    @property
    def total(self) -> int:
        return sum(self.ranks) + self.unranked

    @property
    def best(self) -> int:
        """The votes that picked this image as the best of the K."""
        return self.ranks[0] if self.ranks else 0

    @property
    def mean_rank(self) -> float | None:
        """Mean place (1 = best) when every vote placed the image; None otherwise, because a
        mean over the votes that picked it alone would only count its wins."""
        if not self.total or self.unranked:
            return None
        return sum(place * n for place, n in enumerate(self.ranks, start=1)) / self.total

    @property
    def places(self) -> list[tuple[int, int]]:
        """(place, votes) for each place from 1 to K, for the page."""
        return list(enumerate(self.ranks, start=1))


@dataclass(frozen=True)
class ImageDetail:
    image: Image
    #: url, width, height, tiles (campaigns.serving.payloads); for a video output, ``video``:
    #: the rendition's per-project URL, poster, fps, frames, duration (the gallery's payload)
    display: dict[str, Any]
    original_url: str  # the image file as imported (a video output's: its poster frame)
    preview_url: str | None
    metrics: list[ImageMetricRow]
    distances: list[DistanceRow]
    votes: list[ImageVotes]
    rankings: list[ImageRankings] = field(default_factory=list)  # best-of-K votes
    #: A video output's original file as imported (owners and scientists: the media view's
    #: rule, as for ``original_url``); None for an image.
    video_original_url: str | None = None

    @property
    def parameters(self) -> dict[str, Any]:
        """What made the image: the checkpoint's parameters, overridden by the run's."""
        run = self.image.run
        return {**(run.checkpoint.parameters or {}), **(run.parameters or {})}

    @property
    def parameter_rows(self) -> list[tuple[str, SafeString]]:
        """:attr:`parameters` as the page's table rows, values in words (``display``)."""
        return readable_rows(self.parameters)

    @property
    def metadata_rows(self) -> list[tuple[str, SafeString]]:
        """The image's stored metadata as the page's table rows, values in words."""
        return readable_rows(self.image.metadata)


def media_path_url(name: str) -> str:
    """The access-checked media view's URL for a stored file (evalhub/blobs/views.py):
    originals and previews reach owners and scientists only, whatever the storage."""
    return reverse("media", kwargs={"path": name})


def image_detail(*, image: Image) -> ImageDetail:
    """Everything known about ``image`` (loaded by ``access.image_for_science``, with its
    video and the video's poster): metrics, stored distances and the votes of every campaign
    of its project that showed it."""
    project_id = image.run.project_id
    labels = dict(MetricName.choices)
    metrics = [ImageMetricRow(m, labels.get(m, m), v, c, b) for m, v, c, b in
               ImageMetric.objects.filter(image=image).order_by("metric", "-created_at")
               .values_list("metric", "value", "calibrated", "backbone_id")]
    distances = []
    for a, b, metric, value, calibrated, run_a, run_b in (
            PairMetric.objects.filter(Q(image_a=image) | Q(image_b=image))
            .order_by("metric", "value").values_list(
                "image_a_id", "image_b_id", "metric", "value", "calibrated",
                "image_a__run__name", "image_b__run__name")):
        other, other_run = (b, run_b) if a == image.pk else (a, run_a)
        distances.append(DistanceRow(other, other_run, metric, value, calibrated))
    video = image.video
    return ImageDetail(image=image,
                       display=image_payload(image.blob, video, project_id=project_id),
                       original_url=media_path_url(image.blob.file.name),
                       video_original_url=media_path_url(video.file.name) if video else None,
                       preview_url=(media_path_url(image.preview.name)
                                    if image.preview else None),
                       metrics=metrics, distances=distances,
                       votes=image_votes(image=image, project_id=project_id),
                       rankings=image_rankings(image=image, project_id=project_id))


def _live_votes(*, project_id: int) -> Q:
    """The judgments the image page counts: live, of the project, and human ones only from
    annotators their campaign did not exclude (metric judges always)."""
    excluded = AnnotatorFlag.objects.filter(campaign_id=OuterRef("campaign_id"),
                                            annotator_id=OuterRef("annotator_id"),
                                            excluded=True)
    return (Q(campaign__project_id=project_id, retracted_at__isnull=True)
            & (Q(judge_kind=JudgeKind.HUMAN) & ~Exists(excluded)
               | Q(judge_kind=JudgeKind.METRIC)))


def image_votes(*, image: Image, project_id: int) -> list[ImageVotes]:
    """Per campaign, criterion and opponent: the human votes (less excluded annotators') and
    the metric judges' outcomes of the pair tasks that showed ``image`` (one query). Best-of-K
    votes have no single opponent: :func:`image_rankings` counts them."""
    rows = (Judgment.objects
            .filter(Q(task__image_a=image) | Q(task__image_b=image))
            .filter(_live_votes(project_id=project_id))
            .exclude(outcome=Outcome.RANKED)
            .values_list("campaign_id", "campaign__name", "criterion", "task__image_a_id",
                         "task__image_b_id", "task__run_a__name", "task__run_b__name",
                         "judge_kind", "metric_name", "metric_calibrated", "outcome")
            .annotate(n=Count("id")).order_by())
    found: dict[tuple, dict[str, Any]] = {}
    for (campaign_id, campaign, criterion, image_a, image_b, run_a, run_b, kind, metric,
         calibrated, outcome, n) in rows:
        is_a = image_a == image.pk
        other, other_run = (image_b, run_b) if is_a else (image_a, run_a)
        mine = {Outcome.A: "won", Outcome.B: "lost"} if is_a else {Outcome.A: "lost",
                                                                    Outcome.B: "won"}
        entry = found.setdefault((campaign_id, criterion, other), {
            "campaign_id": campaign_id, "campaign": campaign, "criterion": criterion,
            "other_id": other, "other_run": other_run, "won": 0, "lost": 0, "tie": 0,
            "both_bad": 0, "metric_outcomes": {}})
        if kind == JudgeKind.HUMAN:
            entry[mine.get(outcome, outcome)] += n
        else:
            # A judge scoring with random weights is labelled as its values are.
            judge = metric if calibrated is not False else f"{metric} (uncalibrated)"
            entry["metric_outcomes"][judge] = mine.get(outcome, outcome)
    return sorted((ImageVotes(**entry) for entry in found.values()),
                  key=lambda v: (v.campaign, v.criterion, v.other_run, v.other_id))


def image_rankings(*, image: Image, project_id: int) -> list[ImageRankings]:
    """Per campaign and criterion: where the human best-of-K votes (less excluded annotators')
    placed ``image`` among the K images of its tasks (one query).

    A best-of-K task holds the image at any of its K canonical positions (``TaskImage``; its
    ``image_a``/``image_b`` are positions 0 and 1 only), and a vote stores the picked
    positions, best first (``Judgment.ranking``): the image's place is its position's index
    in the ranking, and a vote that does not list the position did not place it.
    """
    rows = (Judgment.objects
            .filter(task__members__image=image, outcome=Outcome.RANKED,
                    judge_kind=JudgeKind.HUMAN)
            .filter(_live_votes(project_id=project_id))
            # The position comes from the join the filter made: this image's member row.
            .values_list("campaign_id", "campaign__name", "criterion", "campaign__k",
                         "task__members__position", "ranking")
            .annotate(n=Count("id")).order_by())
    found: dict[tuple[int, str], dict[str, Any]] = {}
    for campaign_id, campaign, criterion, k, position, ranking, n in rows:
        entry = found.setdefault((campaign_id, criterion), {
            "campaign_id": campaign_id, "campaign": campaign, "criterion": criterion, "k": k,
            "ranks": [0] * k, "unranked": 0})
        ranking = ranking or []
        place = ranking.index(position) if position in ranking else None
        if place is None or place >= len(entry["ranks"]):
            entry["unranked"] += n
        else:
            entry["ranks"][place] += n
    return sorted((ImageRankings(**{**entry, "ranks": tuple(entry["ranks"])})
                   for entry in found.values()),
                  key=lambda r: (r.campaign, r.criterion))
