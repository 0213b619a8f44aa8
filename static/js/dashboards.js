// Draws the plotly figures that the dashboard pages embed as JSON (see leaderboards/charts.py).
(function () {
  "use strict";
  function draw() {
    if (typeof Plotly === "undefined") { return; }
    document.querySelectorAll("[data-figure]").forEach(function (el) {
      var source = document.getElementById(el.getAttribute("data-figure"));
      if (!source) { return; }
      var fig = JSON.parse(source.textContent);
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
