// t5score report: sorting, filtering and picking by id. The page is complete without this script.
"use strict";
(function () {
  function sortKey(td) {
    var v = td.getAttribute("data-sort");
    if (v !== null) {
      if (v === "") return null;
      if (v === "true") return 1;
      if (v === "false") return 0;
      var x = Number(v);
      if (!isNaN(x)) return x;
    }
    var t = td.textContent.trim().toLowerCase();
    return t === "" ? null : t;
  }
  function compare(a, b) {
    if (typeof a === typeof b) return a < b ? -1 : a > b ? 1 : 0;
    return typeof a === "number" ? -1 : 1;
  }
  function sortTable(table, column, th) {
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("th").forEach(function (h) { h.setAttribute("aria-sort", "none"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).map(function (row, i) {
      return { row: row, key: sortKey(row.cells[column]), i: i };
    });
    rows.sort(function (a, b) {
      if (a.key === null || b.key === null) {  // empty cells last, either way
        return a.key === b.key ? a.i - b.i : a.key === null ? 1 : -1;
      }
      var c = compare(a.key, b.key);
      return (ascending ? c : -c) || a.i - b.i;
    });
    rows.forEach(function (r) { body.appendChild(r.row); });
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("thead th").forEach(function (th, column) {
      th.tabIndex = 0;
      th.title = "sort by this column";
      th.addEventListener("click", function () { sortTable(table, column, th); });
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortTable(table, column, th); }
      });
    });
  });
  document.querySelectorAll("input.filter").forEach(function (box) {
    var table = box.parentNode.querySelector("table");
    box.hidden = false;
    box.addEventListener("input", function () {
      var q = box.value.trim().toLowerCase();
      Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
        row.hidden = q !== "" && row.textContent.toLowerCase().indexOf(q) < 0;
      });
    });
  });
  var form = document.getElementById("pick");
  if (form) {
    form.hidden = false;
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var wanted = document.getElementById("pick-id").value.trim();
      var result = document.getElementById("pick-result");
      var found = null;
      document.querySelectorAll(".example").forEach(function (ex) {
        ex.classList.remove("picked");
        if (found === null && (ex.getAttribute("data-id") === wanted || ex.getAttribute("data-key") === wanted)) found = ex;
      });
      if (found) {
        found.classList.add("picked");
        found.scrollIntoView({ block: "start" });
        result.textContent = "";
      } else {
        result.textContent = "'" + wanted + "' is not embedded in this page. " + form.getAttribute("data-hint").replace("ID", wanted);
      }
    });
  }
})();
