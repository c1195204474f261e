/* stack-replay report page: draws the embedded figures, sorts and filters tables, shows packet
   journeys. Plain DOM code, no network: all data is in <script type="application/json"> blocks. */
(function () {
  "use strict";
  function data(id) { return JSON.parse(document.getElementById(id).textContent); }

  function drawFigures() {
    document.querySelectorAll("div.fig[data-fig]").forEach(function (div) {
      var f = data(div.getAttribute("data-fig"));
      Plotly.newPlot(div, f.data, f.layout, { displaylogo: false, responsive: true });
    });
  }

  function cellValue(td) {
    var v = td.getAttribute("data-v");
    if (v === null) v = td.textContent;
    var n = Number(v);
    return (v !== "" && !isNaN(n)) ? n : v.toLowerCase();
  }

  function makeSortable(table) {
    var ths = table.querySelectorAll("thead th");
    ths.forEach(function (th, col) {
      th.addEventListener("click", function () {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        ths.forEach(function (o) { o.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var tbody = table.tBodies[0];
        var rows = Array.prototype.slice.call(tbody.rows);
        rows.sort(function (a, b) {
          var x = cellValue(a.cells[col]), y = cellValue(b.cells[col]);
          var c = (typeof x === typeof y) ? (x < y ? -1 : x > y ? 1 : 0)
                                          : (typeof x === "number" ? -1 : 1);
          return asc ? c : -c;
        });
        rows.forEach(function (r) { tbody.appendChild(r); });
      });
    });
  }

  function makeFilter(input) {
    var table = document.getElementById(input.getAttribute("data-table"));
    input.addEventListener("input", function () {
      var q = input.value.toLowerCase();
      Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
        r.style.display = r.textContent.toLowerCase().indexOf(q) >= 0 ? "" : "none";
      });
    });
  }

  function text(tag, s, cls) {
    var e = document.createElement(tag);
    e.textContent = s;
    if (cls) e.className = cls;
    return e;
  }

  function showJourney(p) {
    var out = document.getElementById("journey-view");
    out.textContent = "";
    out.appendChild(text("p", p.title, "mono"));
    var t = document.createElement("table");
    t.id = "journey-table";
    var head = document.createElement("tr");
    ["t (ns)", "stage", "symbol", "wait (ns)", "cpu (ns)", "note"].forEach(function (h, i) {
      head.appendChild(text("th", h, i === 0 || i === 3 || i === 4 ? "num" : ""));
    });
    var thead = document.createElement("thead");
    thead.appendChild(head);
    t.appendChild(thead);
    var tb = document.createElement("tbody");
    p.steps.forEach(function (s) {
      var tr = document.createElement("tr");
      [s[0], s[1], s[2], s[3], s[4], s[5]].forEach(function (v, i) {
        tr.appendChild(text("td", v === null ? "" : String(v),
                            i === 0 || i === 3 || i === 4 ? "num mono" : "mono"));
      });
      tb.appendChild(tr);
    });
    t.appendChild(tb);
    out.appendChild(t);
  }

  function journeys() {
    var sel = document.getElementById("pkt-select");
    if (!sel) return;
    var all = data("journeys-data");
    all.forEach(function (p, i) {
      var o = document.createElement("option");
      o.value = String(i);
      o.textContent = p.label;
      sel.appendChild(o);
    });
    sel.addEventListener("change", function () { showJourney(all[Number(sel.value)]); });
    if (all.length) showJourney(all[0]);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("table.sortable").forEach(makeSortable);
    document.querySelectorAll("input[data-table]").forEach(makeFilter);
    journeys();
    drawFigures();
  });
})();
