function lamfastSortTable(table, col, asc) {
  var state = table._rows ? table : table;
  var rows = table._rows || Array.from(table.tBodies[0].rows);
  rows.sort(function (a, b) {
    var x = a.cells[col].dataset.v !== undefined ? a.cells[col].dataset.v : a.cells[col].textContent;
    var y = b.cells[col].dataset.v !== undefined ? b.cells[col].dataset.v : b.cells[col].textContent;
    // an empty cell (a value not measured) goes last whichever the direction
    if (x === '' || y === '') return (x === '') - (y === '');
    var nx = parseFloat(x), ny = parseFloat(y);
    var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
    return asc ? c : -c;
  });
  if (table._rows) { table._rows = rows; lamfastRender(table); }
  else { var body = table.tBodies[0]; rows.forEach(function (r) { body.appendChild(r); }); }
}
function lamfastRender(table) {
  var q = (table._filter || '').toLowerCase();
  var shown = table._rows.filter(function (r) { return !q || r.textContent.toLowerCase().indexOf(q) >= 0; });
  var pages = Math.max(1, Math.ceil(shown.length / table._pageRows));
  table._page = Math.min(table._page, pages - 1);
  var body = table.tBodies[0];
  body.textContent = '';
  shown.slice(table._page * table._pageRows, (table._page + 1) * table._pageRows).forEach(function (r) {
    body.appendChild(r);
  });
  var info = document.getElementById(table.id + '-info');
  if (info) info.textContent = shown.length + ' rows, page ' + (table._page + 1) + ' of ' + pages;
}
document.querySelectorAll('table.paged').forEach(function (table) {
  table._rows = Array.from(table.tBodies[0].rows);
  table._page = 0; table._pageRows = parseInt(table.dataset.pageRows, 10); table._filter = '';
  var filter = document.getElementById(table.id + '-filter');
  if (filter) filter.addEventListener('input', function () { table._filter = filter.value; table._page = 0; lamfastRender(table); });
  var prev = document.getElementById(table.id + '-prev'), next = document.getElementById(table.id + '-next');
  if (prev) prev.addEventListener('click', function () { table._page = Math.max(0, table._page - 1); lamfastRender(table); });
  if (next) next.addEventListener('click', function () { table._page += 1; lamfastRender(table); });
  lamfastRender(table);
});
document.querySelectorAll('table.sortable').forEach(function (table) {
  Array.from(table.tHead.rows[0].cells).forEach(function (th) {
    th.addEventListener('click', function () {
      var asc = th.dataset.order !== 'asc';
      Array.from(table.tHead.rows[0].cells).forEach(function (o) { delete o.dataset.order; });
      th.dataset.order = asc ? 'asc' : 'desc';
      lamfastSortTable(table, th.cellIndex, asc);
    });
  });
});
document.querySelectorAll('.gallery-switch input').forEach(function (radio) {
  radio.addEventListener('change', function () {
    var box = radio.closest('.gallery-box');
    box.querySelectorAll('.gallery').forEach(function (g) { g.hidden = g.dataset.kind !== radio.value; });
  });
});
// index.html#selftest: click every header of every table, twice,
// and write what each column then holds into a pre element, id selftest (read by the tests).
if (location.hash === '#selftest') {
  var out = [];
  document.querySelectorAll('table.sortable').forEach(function (table) {
    var n = table.tHead.rows[0].cells.length;
    for (var col = 0; col < n; col++) {
      var th = table.tHead.rows[0].cells[col];
      ['asc', 'desc'].forEach(function (order) {
        th.click();
        var body = table.tBodies[0];
        out.push({table: table.id, col: col, order: th.dataset.order, expected: order,
                  values: Array.from(body.rows).map(function (r) {
                    var c = r.cells[col]; return c.dataset.v !== undefined ? c.dataset.v : c.textContent; })});
      });
    }
  });
  var pre = document.createElement('pre'); pre.id = 'selftest'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
}
