// Draws the plotly figures that the dashboard pages embed as JSON (see leaderboards/charts.py).
(function () {
  "use strict";
  // A box narrower than this gets its legend under the plot, one entry a line: above it (the
  // figures' place for it, charts.py _LEGEND) long run names wrap into rows over the title.
  var NARROW_PX = 600, LEGEND_LINE_PX = 20;

  function legendBelow(fig, width) {
    var layout = fig.layout || {};
    var entries = (fig.data || []).filter(function (trace) {
      return trace.showlegend !== false && trace.name;
    }).length;
    if (width >= NARROW_PX || layout.showlegend === false || entries < 2 && !layout.showlegend) {
      return;
    }
    var extra = entries * LEGEND_LINE_PX + 16;
    layout.legend = Object.assign({}, layout.legend, {
      orientation: "v", yref: "container", y: 0, yanchor: "bottom", x: 0, xanchor: "left"
    });
    layout.margin = Object.assign({}, layout.margin);
    layout.margin.b = (layout.margin.b || 60) + extra;
    if (layout.height) { layout.height += extra; }
    fig.layout = layout;
  }

  // A title wider than a narrow box runs off its right edge (plotly does not wrap titles):
  // there it is broken between words, the top margin growing by a line per break.
  var TITLE_CHAR_PX = 9, TITLE_LINE_PX = 22;

  function wrapTitle(fig, width) {
    var layout = fig.layout || {};
    var title = typeof layout.title === "string" ? { text: layout.title } : layout.title;
    if (width >= NARROW_PX || !title || !title.text) { return; }
    var room = Math.max(12, Math.floor((width - 50) / TITLE_CHAR_PX));
    var lines = [], line = "";
    title.text.split(" ").forEach(function (word) {
      if (line && (line + " " + word).length > room) { lines.push(line); line = word; }
      else { line = line ? line + " " + word : word; }
    });
    lines.push(line);
    if (lines.length < 2) { return; }
    var extra = (lines.length - 1) * TITLE_LINE_PX;
    layout.title = Object.assign({}, title, { text: lines.join("<br>") });
    layout.margin = Object.assign({}, layout.margin);
    layout.margin.t = (layout.margin.t || 70) + extra;
    if (layout.height) { layout.height += extra; }
    fig.layout = layout;
  }

  function draw() {
    if (typeof Plotly === "undefined") { return; }
    document.querySelectorAll("[data-figure]").forEach(function (el) {
      var source = document.getElementById(el.getAttribute("data-figure"));
      if (!source) { return; }
      var fig = JSON.parse(source.textContent);
      legendBelow(fig, el.clientWidth);
      wrapTitle(fig, el.clientWidth);
      // responsive: true draws the chart 100% of the box's width (it follows a phone's or a
      // resized window's) and 100% of its height; the box's height is the figure's own, else
      // a taller figure (the Elo chart, 380 px) spills over the chart below its box.
      if (fig.layout && fig.layout.height) { el.style.height = fig.layout.height + "px"; }
      Plotly.newPlot(el, fig.data, fig.layout, { responsive: true, displaylogo: false });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
