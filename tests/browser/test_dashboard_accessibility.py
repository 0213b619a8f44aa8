"""The dashboards' charts to a screen reader (WCAG 1.1.1 Non-text Content): every chart box is
an image with a name saying what it shows, plotly's drawing (tick labels, legend, mode bar)
stays out of the accessibility tree, and each win-rate heatmap and the chart of Elo by prompt
category has a table equivalent whose cells are the figure's own numbers, row and column
headed by the runs' (and categories') names. A board judged
by a metric scored with random weights keeps its "uncalibrated" flag in the names and tables.

Read from Chromium's own accessibility tree (the DevTools protocol), as assistive technology
gets it.
"""

from __future__ import annotations

import json
import math
from decimal import ROUND_HALF_UP, Decimal

import pytest

from evalhub.leaderboards.services import metric_judges_run
from tests.browser.conftest import login
from tests.browser.world import live_judgments
from tests.builders import build_campaign
from tests.leaderboards.helpers import set_run_metric, simulate_votes
from tests.leaderboards.test_metric_judges import _scored_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DRAWN = "() => document.querySelectorAll('.js-plotly-plot .main-svg').length > 0"
TABLES_BUILT = ("() => [...document.querySelectorAll('table[data-matrix], table[data-bars]')]"
                ".every(table => table.tBodies.length > 0)")
# A name that the page's markup (or a run's name) could not smuggle in: "&" and "<" in a run's
# name reach the heatmap escaped (charts.label); the table shows the characters typed.
ODD_NAME = "run <b>&amp; co"
NO_VALUE = "\N{EN DASH}"  # a cell of the diagonal, or of two runs that never met


def ax_tree(page) -> list[dict]:
    """Chromium's accessibility tree of the page: the nodes assistive technology is given,
    each with the start of its element's markup (``html``) for a failure's message."""
    session = page.context.new_cdp_session(page)
    try:
        nodes = [node for node in session.send("Accessibility.getFullAXTree")["nodes"]
                 if not node.get("ignored")]
        for node in nodes:
            if "backendDOMNodeId" in node:
                element = session.send("DOM.resolveNode",
                                       {"backendNodeId": node["backendDOMNodeId"]})["object"]
                node["html"] = session.send("Runtime.callFunctionOn", {
                    "objectId": element["objectId"], "returnByValue": True,
                    "functionDeclaration": "function () { return (this.outerHTML"
                                           " || this.textContent || '').slice(0, 120); }",
                })["result"].get("value")
        return nodes
    finally:
        session.detach()


def unnamed_images(tree: list[dict]) -> list[str]:
    return [node.get("html", "?") for node in tree
            if node["role"]["value"] in ("image", "img", "graphics-document")
            and not node.get("name", {}).get("value")]


def named_images(page) -> dict[str, str]:
    """Each chart box's role and name as Chromium exposes them, by the box's id."""
    session = page.context.new_cdp_session(page)
    try:
        found = {}
        document = session.send("DOM.getDocument", {"depth": 0})
        for box in page.eval_on_selector_all("[data-figure]", "els => els.map(e => e.id)"):
            node = session.send("DOM.querySelector", {"nodeId": document["root"]["nodeId"],
                                                      "selector": f"#{box}"})
            ax = session.send("Accessibility.getPartialAXTree",
                              {"nodeId": node["nodeId"], "fetchRelatives": False})["nodes"][0]
            found[box] = (ax["role"]["value"], ax.get("name", {}).get("value", ""))
        return found
    finally:
        session.detach()


def unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def percent(fraction: float) -> Decimal:
    """``fraction`` in percent to one decimal, a half rounded up (JavaScript's toFixed)."""
    return Decimal(100 * fraction).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def figure_heatmap(page, chart: str) -> dict:
    figure = json.loads(page.text_content(f"#{chart}-data"))
    return next(trace for trace in figure["data"] if trace["type"] == "heatmap")


def figure_matrix(page, chart: str) -> tuple[list[str], list[str]]:
    """The heatmap's column labels and its rows as the table must show them (one decimal, a
    dash where the figure has no value; the observed matrix with the votes behind each cell),
    straight from the figure JSON the page embeds."""
    heatmap = figure_heatmap(page, chart)
    votes = heatmap.get("customdata") or [[None] * len(heatmap["x"])] * len(heatmap["y"])
    columns = [unescape(x) for x in heatmap["x"]]
    rows = [[unescape(y)] + [NO_VALUE if v is None else f"{percent(v)}%"
                             + ("" if n is None else f" of {round(n, 2):g} votes")
                             for v, n in zip(z, counts, strict=True)]
            for y, z, counts in zip(heatmap["y"], heatmap["z"], votes, strict=True)]
    return columns, rows


def js_round(value: float) -> int:
    """JavaScript's Math.round: a half rounds up."""
    return math.floor(value + 0.5)


def figure_bars(page) -> tuple[list[str], list[list[str]]]:
    """The category chart's categories and, per run (bar trace), the cells its table must
    show: the rating and its 95 % interval, whole Elo points, a dash where the run has no
    votes in the category."""
    figure = json.loads(page.text_content("#categories-data"))
    bars = [trace for trace in figure["data"] if trace["type"] == "bar"]
    rows = [[unescape(trace["name"])]
            + [NO_VALUE if y is None else f"{js_round(y)}"
               + ("" if lo is None or hi is None else f" [{js_round(lo)}, {js_round(hi)}]")
               for y, (lo, hi) in zip(trace["y"], trace["customdata"], strict=True)]
            for trace in bars]
    return [unescape(x) for x in bars[0]["x"]], rows


def shown_matrix(page, chart: str) -> tuple[list[str], list[list[str]]]:
    table = page.locator(f"#{chart}-table")
    columns = table.locator("thead th[scope=col]").all_text_contents()[1:]
    rows = [row.locator("th[scope=row], td").all_text_contents()
            for row in table.locator("tbody tr").all()]
    return columns, rows


def test_every_chart_is_a_named_image_and_the_win_rates_are_a_table_of_the_figure_s_numbers(
        context, errors):
    world = build_campaign(runs=3, prompts=4, annotators=2,
                           run_names=["alpha", "beta", ODD_NAME])
    simulate_votes(world, {run.id: s for run, s in zip(world.runs, [1200, 1000, 800],
                                                       strict=True)})
    set_run_metric(world.runs[0], "fid", 12.5)
    set_run_metric(world.runs[1], "fid", 15.0, calibrated=False)
    page = context.new_page()
    login(page, world.scientist.username, f"/dashboard/campaigns/{world.campaign.pk}/")
    page.wait_for_function(DRAWN)
    page.wait_for_function(TABLES_BUILT)

    names = named_images(page)
    assert set(names) >= {"elo", "winrate-observed", "winrate-predicted", "categories"}
    assert {box: role for box, (role, _) in names.items()} == {box: "image" for box in names}
    assert names["elo"][1].startswith("Elo rating of each run (overall) with its 95% interval")
    assert names["winrate-observed"][1].startswith(
        "Observed win rates, row run beats column run")
    assert names["winrate-predicted"][1].startswith(
        "Win rates predicted from Elo, row run beats column run")
    assert names["categories"][1].startswith("Elo of each run per prompt category")
    # A run-level metric with random weights is flagged in the scatter's name, as on its panel.
    assert "uncalibrated" in names["metric-scatter"][1]
    # Nothing of plotly's drawing reaches the tree: no unnamed image, no loose tick labels.
    tree = ax_tree(page)
    assert unnamed_images(tree) == []
    texts = [n.get("name", {}).get("value", "") for n in tree
             if n["role"]["value"] in ("StaticText", "text")]
    assert "online Elo (live)" not in texts  # the Elo chart's legend entry

    for chart in ("winrate-observed", "winrate-predicted"):
        summary = page.locator(f"#{chart}-table").locator("xpath=ancestor::details/summary")
        assert not page.locator(f"#{chart}-table").is_visible()
        summary.click()
        assert page.locator(f"#{chart}-table").is_visible()
        columns, rows = shown_matrix(page, chart)
        assert (columns, rows) == figure_matrix(page, chart)
        assert sorted(columns) == sorted(["alpha", "beta", ODD_NAME])
        assert "uncalibrated" not in page.locator(f"#{chart}-table caption").inner_text()
    # The category chart's table: each run's rating and interval per category, as drawn.
    page.locator("#categories-table").locator("xpath=ancestor::details/summary").click()
    categories, rows = shown_matrix(page, "categories")
    assert (categories, rows) == figure_bars(page)
    assert len(categories) >= 2 and sorted(row[0] for row in rows) == sorted(
        ["alpha", "beta", ODD_NAME])
    assert all(cell == NO_VALUE or "[" in cell for row in rows for cell in row[1:])
    # The observed cells' vote counts are the campaign's votes: each pair's once per side.
    votes = figure_heatmap(page, "winrate-observed")["customdata"]
    assert all(votes[i][j] == votes[j][i] for i in range(3) for j in range(3))
    assert sum(votes[i][j] for i in range(3) for j in range(i + 1, 3)) == \
        live_judgments(world.campaign).filter(criterion="overall").count()
    assert "customdata" not in figure_heatmap(page, "winrate-predicted")
    assert errors == [] and page.evaluate("window.__violations") == []


def test_a_board_judged_by_an_uncalibrated_metric_flags_its_charts_and_win_rate_tables(
        context, errors):
    world = _scored_world(calibrated=False)
    metric_judges_run(campaign=world.campaign)
    page = context.new_page()
    url = f"/dashboard/campaigns/{world.campaign.pk}/?judge=metric:clip_score"
    login(page, world.scientist.username, url)
    page.wait_for_function(DRAWN)
    page.wait_for_function(TABLES_BUILT)
    names = named_images(page)
    for chart in ("elo", "winrate-observed", "winrate-predicted"):
        assert "uncalibrated" in names[chart][1], chart
    for chart in ("winrate-observed", "winrate-predicted"):
        assert "uncalibrated" in page.locator(f"#{chart}-table caption").text_content()
        assert shown_matrix(page, chart)[1] == figure_matrix(page, chart)[1]
    assert "uncalibrated" in names["categories"][1]
    assert "uncalibrated" in page.locator("#categories-table caption").text_content()
    assert shown_matrix(page, "categories") == figure_bars(page)
    assert errors == [] and page.evaluate("window.__violations") == []


def test_the_model_page_s_charts_are_named_images(context, errors):
    world = build_campaign(runs=2, prompts=3, annotators=2)
    simulate_votes(world, {run.id: s for run, s in zip(world.runs, [1100, 900], strict=True)})
    set_run_metric(world.runs[0], "fid", 12.5, calibrated=False)
    set_run_metric(world.runs[1], "fid", 11.0, calibrated=False)
    page = context.new_page()
    model = world.runs[0].checkpoint.model_id
    login(page, world.scientist.username, f"/dashboard/models/{model}/")
    page.wait_for_function(DRAWN)
    names = named_images(page)
    assert names["checkpoint-elo"] == (
        "image", "Human Elo of this model's checkpoints along training, one line per "
                 "campaign, with 95% intervals. The numbers are in the Runs table.")
    assert names["metric-fid"][0] == "image"
    assert names["metric-fid"][1].startswith("Along training: FID")
    assert "uncalibrated" in names["metric-fid"][1]
    assert unnamed_images(ax_tree(page)) == []
    assert errors == [] and page.evaluate("window.__violations") == []
