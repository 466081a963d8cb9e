"""The board's script (gr.HTML `js_on_load`): hover, expand, pick, grade, keyboard.

It only ever writes into two hidden textboxes and dispatches an input event, so every change goes
through a Python callback: a grade to `#judge-box` (JSON: doc id, grade, the reason typed in
`#judge-reason`, and a counter so the same grade twice is still an event), a re-ranked row's
click to `#contrast-pick` (the "why is A above B" panel). The element persists while its HTML is
redrawn, so the listeners are attached once, on it; `watch` puts the keyboard focus back on the
row last focused when a redraw took it away.
"""

BOARD_JS = """
let focusAfter = null;
let sent = 0;
const rowsOf = (docId) => [...element.querySelectorAll('li.hit')].filter(r => r.dataset.docId === docId);
const light = (row, on) => { if (row) rowsOf(row.dataset.docId).forEach(r => r.classList.toggle('lit', on)); };
element.addEventListener('focusin', (e) => {
  const row = e.target.closest('li.hit');
  if (row) focusAfter = {column: row.closest('.board-column')?.dataset.column, docId: row.dataset.docId};
});
element.addEventListener('mouseover', (e) => light(e.target.closest('li.hit'), true));
element.addEventListener('mouseout', (e) => light(e.target.closest('li.hit'), false));
function grade(row, value) {
  const box = document.querySelector('#judge-box textarea, #judge-box input');
  if (!row || !box) return;
  const reason = document.querySelector('#judge-reason textarea, #judge-reason input');
  sent += 1;
  box.value = JSON.stringify({doc_id: row.dataset.docId, grade: Number(value), reason: reason ? reason.value : '', n: sent});
  box.dispatchEvent(new Event('input', {bubbles: true}));
}
function pick(row) {
  const box = document.querySelector('#contrast-pick textarea, #contrast-pick input');
  if (!box) return;
  const picked = [...element.querySelectorAll('li.hit.picked')];
  if (picked.length >= 2) picked[0].classList.remove('picked');
  row.classList.add('picked');
  box.value = row.dataset.docId + '\\u0001' + (Number(box.value.split('\\u0001')[1] || 0) + 1);
  box.dispatchEvent(new Event('input', {bubbles: true}));
}
element.addEventListener('click', (e) => {
  const button = e.target.closest('.grade-button');
  const row = e.target.closest('li.hit');
  if (!row) return;
  if (button) { grade(row, button.dataset.value); return; }
  row.classList.toggle('expanded');
  const role = row.closest('.board-column')?.dataset.role;
  if (role === 'rerank' || role === 'full') pick(row);
});
element.addEventListener('keydown', (e) => {
  const row = e.target.closest('li.hit');
  if (!row || e.ctrlKey || e.metaKey || e.altKey) return;
  if (['0', '1', '2', '3'].includes(e.key) && row.querySelector('.grade-button')) { e.preventDefault(); grade(row, e.key); }
  else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
    const next = e.key === 'ArrowDown' ? row.nextElementSibling : row.previousElementSibling;
    if (next && next.matches('li.hit')) { e.preventDefault(); next.focus(); }
  } else if (e.key === 'Enter') { row.classList.toggle('expanded'); }
});
watch('value', () => {
  if (!focusAfter || (document.activeElement && document.activeElement !== document.body)) return;
  const column = [...element.querySelectorAll('.board-column')].find(c => c.dataset.column === focusAfter.column);
  const row = column && [...column.querySelectorAll('li.hit')].find(r => r.dataset.docId === focusAfter.docId);
  if (row) row.focus();
});
"""
