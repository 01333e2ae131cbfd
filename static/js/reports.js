/* The handoff report's charts (Chart.js, vendored in static/vendor/chartjs). The numbers come from the
   page's json_script "report-charts"; each chart also has a data table under it. Colour is never the only
   cue: every series of a multi-series chart has its own fill pattern (stripes, dots, crosses...) and the
   legend shows it; single-series charts are labelled on their axes. Clicking a bar opens the list of the
   conversations behind it (the link the server put beside each number). */
(function () {
  "use strict";

  var data = document.getElementById("report-charts");
  if (!data || typeof window.Chart === "undefined") return;
  var charts = JSON.parse(data.textContent);

  // Palette readable by most colour-blind readers (Okabe–Ito), each paired with a pattern.
  var COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];
  var PATTERNS = ["solid", "stripes", "dots", "cross", "backslash", "grid", "zigzag", "rings"];

  function pattern(kind, colour) {
    var size = 10;
    var canvas = document.createElement("canvas");
    canvas.width = canvas.height = size;
    var c = canvas.getContext("2d");
    c.fillStyle = colour;
    c.globalAlpha = 0.35;
    c.fillRect(0, 0, size, size);
    c.globalAlpha = 1;
    c.strokeStyle = colour;
    c.fillStyle = colour;
    c.lineWidth = 2;
    c.beginPath();
    if (kind === "solid") { c.fillRect(0, 0, size, size); }
    else if (kind === "stripes") { c.moveTo(0, size); c.lineTo(size, 0); }
    else if (kind === "backslash") { c.moveTo(0, 0); c.lineTo(size, size); }
    else if (kind === "dots") { c.arc(size / 2, size / 2, 2, 0, 2 * Math.PI); c.fill(); }
    else if (kind === "cross") { c.moveTo(0, size); c.lineTo(size, 0); c.moveTo(0, 0); c.lineTo(size, size); }
    else if (kind === "grid") { c.moveTo(size / 2, 0); c.lineTo(size / 2, size); c.moveTo(0, size / 2); c.lineTo(size, size / 2); }
    else if (kind === "zigzag") { c.moveTo(0, size); c.lineTo(size / 2, 0); c.lineTo(size, size); }
    else if (kind === "rings") { c.arc(size / 2, size / 2, 3, 0, 2 * Math.PI); }
    c.stroke();
    return c.createPattern(canvas, "repeat");
  }

  Object.keys(charts).forEach(function (key) {
    var spec = charts[key];
    var canvas = document.getElementById("chart-" + key);
    if (!canvas) return;
    var many = spec.datasets.length > 1;
    var datasets = spec.datasets.map(function (series, i) {
      var colour = COLOURS[i % COLOURS.length];
      return {
        label: series.label,
        data: series.data,
        backgroundColor: many ? pattern(PATTERNS[i % PATTERNS.length], colour) : colour,
        borderColor: colour,
        borderWidth: 1
      };
    });
    var chart = new window.Chart(canvas, {
      type: spec.type,
      data: { labels: spec.labels, datasets: datasets },
      options: {
        // Ticks and tooltips write numbers as the page's language does (Intl.NumberFormat).
        locale: document.documentElement.lang || undefined,
        indexAxis: spec.horizontal ? "y" : "x",
        maintainAspectRatio: false,
        animation: false,
        scales: {
          x: { stacked: !!spec.stacked, beginAtZero: true },
          y: { stacked: !!spec.stacked, beginAtZero: true }
        },
        plugins: { legend: { display: many } },
        onHover: function (event, elements) {
          event.native.target.style.cursor = elements.length ? "pointer" : "default";
        },
        onClick: function (event, elements) {
          if (!elements.length) return;
          var hit = elements[0];
          var link = spec.datasets[hit.datasetIndex].links[hit.index];
          if (link) window.location.assign(link);
        }
      }
    });
    canvas.dataset.ready = "true";
    canvas.chart = chart;
  });
})();
