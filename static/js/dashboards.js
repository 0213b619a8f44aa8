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

  // The box is one named image to assistive technology (role="img", its aria-label in the
  // template); plotly's drawing inside it (tick labels, legend, hover layer, mode bar) would
  // only be read as loose text, so it is hidden from the accessibility tree, again after each
  // redraw (a resize, a legend click) in case plotly made new elements. So is the <svg> that
  // plotly adds to the page's body to measure text (an unnamed image in the tree otherwise).
  function hideDrawing(el) {
    Array.prototype.forEach.call(el.children, function (child) {
      child.setAttribute("aria-hidden", "true");
    });
    var tester = document.getElementById("js-plotly-tester");
    if (tester) { tester.setAttribute("aria-hidden", "true"); }
  }

  // The figures' labels are escaped for plotly (charts.py label(): a run's name is a user's
  // text); a table cell's textContent shows the characters typed, so they are unescaped.
  function unescapeLabel(text) {
    return String(text).replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
  }

  function cell(tag, text, scope) {
    var node = document.createElement(tag);
    node.textContent = text;
    if (scope) { node.setAttribute("scope", scope); }
    return node;
  }

  // A win-rate heatmap as a table (its text equivalent, WCAG 1.1.1): the row's run against
  // the column's, in percent, read from the figure itself so that table and chart cannot
  // disagree. Built without plotly (the numbers are there even if the chart is not drawn).
  function matrixTable(table) {
    var source = document.getElementById(table.getAttribute("data-matrix"));
    if (!source) { return; }
    var heatmap = (JSON.parse(source.textContent).data || []).filter(function (trace) {
      return trace.type === "heatmap";
    })[0];
    if (!heatmap) { return; }
    var head = table.createTHead().insertRow();
    head.appendChild(cell("th", "Row's run, against the column's", "col"));
    heatmap.x.forEach(function (name) { head.appendChild(cell("th", unescapeLabel(name), "col")); });
    var body = table.createTBody();
    // The observed matrix carries the votes behind each cell (charts.winrate_chart).
    var votes = heatmap.customdata || null;
    heatmap.y.forEach(function (name, i) {
      var row = body.insertRow();
      row.appendChild(cell("th", unescapeLabel(name), "row"));
      heatmap.z[i].forEach(function (value, j) {
        var n = votes && votes[i] ? votes[i][j] : null;
        var td = cell("td", value === null ? "–" : (100 * value).toFixed(1) + "%"
          + (n === null || n === undefined ? "" : " of " + Math.round(n * 100) / 100 + " votes"));
        td.className = "num";
        row.appendChild(td);
      });
    });
  }

  // The grouped bars of Elo by prompt category as a table: a row per run (a bar trace), a
  // column per category, each cell the rating and its 95 % interval, read from the figure.
  function barsTable(table) {
    var source = document.getElementById(table.getAttribute("data-bars"));
    if (!source) { return; }
    var bars = (JSON.parse(source.textContent).data || []).filter(function (trace) {
      return trace.type === "bar";
    });
    if (!bars.length) { return; }
    var head = table.createTHead().insertRow();
    head.appendChild(cell("th", "Run", "col"));
    bars[0].x.forEach(function (name) { head.appendChild(cell("th", unescapeLabel(name), "col")); });
    var body = table.createTBody();
    bars.forEach(function (trace) {
      var row = body.insertRow();
      row.appendChild(cell("th", unescapeLabel(trace.name), "row"));
      trace.y.forEach(function (value, j) {
        var bounds = trace.customdata ? trace.customdata[j] : null;
        var text = value === null ? "–" : String(Math.round(value));
        if (value !== null && bounds && bounds[0] !== null && bounds[1] !== null) {
          text += " [" + Math.round(bounds[0]) + ", " + Math.round(bounds[1]) + "]";
        }
        var td = cell("td", text);
        td.className = "num";
        row.appendChild(td);
      });
    });
  }

  function draw() {
    document.querySelectorAll("table[data-matrix]").forEach(matrixTable);
    document.querySelectorAll("table[data-bars]").forEach(barsTable);
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
      Plotly.newPlot(el, fig.data, fig.layout, { responsive: true, displaylogo: false })
        .then(function () {
          hideDrawing(el);
          el.on("plotly_afterplot", function () { hideDrawing(el); });
        });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
