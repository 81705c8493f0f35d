/*
 * The dashboard's script: fetches the figures from this server and draws
 * them. Every value from the server reaches the page as text (textContent,
 * SVG attributes set one by one), never as markup: a deviation's
 * description is shown exactly as typed, whatever it contains.
 */
'use strict';

const SVG = 'http://www.w3.org/2000/svg';
const tal = new Intl.NumberFormat('sv-SE');
const procent = new Intl.NumberFormat('sv-SE', { style: 'percent', maximumFractionDigits: 1 });
const decimal = new Intl.NumberFormat('sv-SE', { maximumFractionDigits: 1 });

// "1 avvikelse", "4 avvikelser": the number with the noun in its form.
function antal(n, en, flera) {
  return `${tal.format(n)} ${n === 1 ? en : flera}`;
}

// "1 dag", "4,2 dagar": days with a decimal comma.
function dagar(d) {
  return `${decimal.format(d)} ${d === 1 ? 'dag' : 'dagar'}`;
}
const MANADER = ['jan', 'feb', 'mar', 'apr', 'maj', 'jun', 'jul', 'aug', 'sep', 'okt', 'nov', 'dec'];

function el(tag, text, klass) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (klass) e.className = klass;
  return e;
}

function svgEl(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = String(text);
  return e;
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

function visa(status, fel) {
  const s = document.getElementById('status');
  s.textContent = status;
  s.className = fel ? 'fel' : '';
}

/* A vertical bar chart: one column per item. */
function stapeldiagram(id, items, etikett, titel) {
  const box = document.getElementById(id);
  clear(box);
  const w = 640, h = 220, top = 22, bottom = 36, left = 6;
  const max = Math.max(1, ...items.map((i) => i.count));
  const slot = items.length ? (w - 2 * left) / items.length : 0;
  const bar = slot * 0.7;
  const svg = svgEl('svg', { viewBox: `0 0 ${w} ${h}`, role: 'img', 'aria-label': titel, class: 'diagram' });
  svg.appendChild(svgEl('line', { x1: left, y1: h - bottom, x2: w - left, y2: h - bottom, class: 'axel' }));
  items.forEach((item, i) => {
    const bh = (h - top - bottom) * item.count / max;
    const x = left + slot * i + (slot - bar) / 2;
    const rect = svgEl('rect', { x: x.toFixed(1), y: (h - bottom - bh).toFixed(1), width: bar.toFixed(1), height: bh.toFixed(1), class: 'stapel' });
    rect.appendChild(svgEl('title', {}, `${etikett(item)}: ${tal.format(item.count)}`));
    svg.appendChild(rect);
    svg.appendChild(svgEl('text', { x: (x + bar / 2).toFixed(1), y: (h - bottom - bh - 4).toFixed(1), 'text-anchor': 'middle' }, tal.format(item.count)));
    svg.appendChild(svgEl('text', { x: (x + bar / 2).toFixed(1), y: h - bottom + 15, 'text-anchor': 'middle' }, etikett(item)));
  });
  box.appendChild(svg);
}

/* A horizontal bar chart: one row per item, its label to the left. */
function liggandediagram(id, items, titel) {
  const box = document.getElementById(id);
  clear(box);
  const w = 640, rad = 22, lw = 250, vw = 50;
  const h = items.length * rad + 8;
  const max = Math.max(1, ...items.map((i) => i.count));
  const svg = svgEl('svg', { viewBox: `0 0 ${w} ${h}`, role: 'img', 'aria-label': titel, class: 'diagram' });
  items.forEach((item, i) => {
    const y = i * rad + 4;
    const bw = (w - lw - vw) * item.count / max;
    svg.appendChild(svgEl('text', { x: lw - 8, y: y + 15, 'text-anchor': 'end' }, item.label));
    const rect = svgEl('rect', { x: lw, y: y + 3, width: bw.toFixed(1), height: rad - 6, class: 'stapel' });
    rect.appendChild(svgEl('title', {}, `${item.label}: ${tal.format(item.count)}`));
    svg.appendChild(rect);
    svg.appendChild(svgEl('text', { x: (lw + bw + 6).toFixed(1), y: y + 15 }, tal.format(item.count)));
  });
  box.appendChild(svg);
}

function manadsetikett(item, ettAr) {
  const m = Number(item.month.slice(5, 7));
  return ettAr ? MANADER[m - 1] : `${MANADER[m - 1]} ${item.month.slice(2, 4)}`;
}

function nyckeltal(s) {
  const dl = document.getElementById('nyckeltal');
  clear(dl);
  const d = s.deadline;
  const rader = [
    ['Rapporterade avvikelser', tal.format(s.total)],
    ['Besvarade inom tidsgränsen (lokal policy)', d.share === null ? '–' : procent.format(d.share)],
    ['Försenade just nu', tal.format(s.overdue)],
    ['Eskalerade', tal.format(s.escalation.escalated)],
    ['Median tid till svar', s.response_time.answer.p50_days === null ? '–' : dagar(s.response_time.answer.p50_days)],
    ['Möjlig lex Maria', tal.format(s.flags.possible_lex_maria)],
  ];
  for (const [namn, varde] of rader) {
    const div = el('div');
    div.appendChild(el('dt', namn));
    div.appendChild(el('dd', varde));
    dl.appendChild(div);
  }
}

// A share as "12,5 %", "–" when nothing to share.
function andel(x) {
  return x === null ? '–' : procent.format(x);
}

/* A table of how clear the allocation was, one row per item (a month, a
 * sub-agreement, a care setting) under the heading vad. */
function tydlighet(id, vad, items, etikett) {
  const box = document.getElementById(id);
  clear(box);
  const table = el('table');
  const head = el('tr');
  head.appendChild(el('th', vad));
  for (const rubrik of ['Antal', 'Fel mottagare', 'Triage', 'Manuell triage']) head.appendChild(el('th', rubrik, 'num'));
  table.appendChild(el('thead')).appendChild(head);
  const tbody = table.appendChild(el('tbody'));
  for (const item of items) {
    const tr = el('tr');
    tr.appendChild(el('td', etikett(item)));
    tr.appendChild(el('td', tal.format(item.count), 'num'));
    tr.appendChild(el('td', andel(item.wrong_receiver_rate), 'num'));
    tr.appendChild(el('td', andel(item.triage_rate), 'num'));
    tr.appendChild(el('td', andel(item.manual_triage_rate), 'num'));
    tbody.appendChild(tr);
  }
  if (!items.length) tomRad(tbody, 5, 'Inga avvikelser.');
  box.appendChild(table);
}

function matt(id, fordelning) {
  const p = document.getElementById(id);
  p.textContent = fordelning.count === 0 ? 'Inga mätvärden ännu.'
    : `${antal(fordelning.count, 'avvikelse', 'avvikelser')}; median ${dagar(fordelning.p50_days)}, 90:e percentilen ${dagar(fordelning.p90_days)}.`;
}

function partcell(rad, item, roll) {
  const td = el('td', item[`${roll}_name`]);
  if (item[`${roll}_party`]) td.appendChild(el('span', ` (${item[`${roll}_party`]})`, 'kod'));
  rad.appendChild(td);
}

function tomRad(tbody, kolumner, text) {
  const tr = el('tr');
  const td = el('td', text, 'tom');
  td.colSpan = kolumner;
  tr.appendChild(td);
  tbody.appendChild(tr);
}

function tabeller(s) {
  const par = document.getElementById('partspar');
  clear(par);
  for (const item of s.by_party_pair) {
    const tr = el('tr');
    partcell(tr, item, 'reporter');
    partcell(tr, item, 'receiver');
    tr.appendChild(el('td', tal.format(item.count), 'num'));
    par.appendChild(tr);
  }
  if (!s.by_party_pair.length) tomRad(par, 3, 'Inga avvikelser.');

  const kommuner = document.getElementById('kommuner');
  clear(kommuner);
  const sorterade = [...s.by_municipality].sort((a, b) => b.count - a.count || a.name.localeCompare(b.name, 'sv'));
  for (const k of sorterade) {
    const tr = el('tr');
    tr.appendChild(el('td', k.name));
    tr.appendChild(el('td', k.subregion));
    tr.appendChild(el('td', tal.format(k.count), 'num'));
    kommuner.appendChild(tr);
  }
  if (!sorterade.length) tomRad(kommuner, 3, 'Inga avvikelser.');

  const senaste = document.getElementById('senaste');
  clear(senaste);
  for (const a of s.latest) {
    const tr = el('tr');
    tr.appendChild(el('td', a.deviation_id, 'kod'));
    tr.appendChild(el('td', a.reported_at_local));
    partcell(tr, a, 'reporter');
    partcell(tr, a, 'receiver');
    tr.appendChild(el('td', a.category_label));
    tr.appendChild(el('td', a.state_label));
    tr.appendChild(el('td', a.excerpt, 'utdrag'));
    senaste.appendChild(tr);
  }
  if (!s.latest.length) tomRad(senaste, 7, 'Inga avvikelser.');
}

function forsenade(f) {
  document.getElementById('forsenade-antal').textContent = f.total === 0
    ? 'Inga avvikelser är försenade.'
    : `${antal(f.total, 'avvikelse', 'avvikelser')} saknar kvittens eller svar efter tidsgränsen (kalenderdagar, svensk tid; tidsgränserna är lokal policy, inte avtalets).`;
  const tbody = document.getElementById('forsenade');
  clear(tbody);
  for (const a of f.items) {
    const tr = el('tr');
    tr.appendChild(el('td', a.deviation_id, 'kod'));
    partcell(tr, a, 'reporter');
    partcell(tr, a, 'receiver');
    tr.appendChild(el('td', a.category_label));
    tr.appendChild(el('td', `${a.deadline_label}, ${a.deadline_at_local}`));
    tr.appendChild(el('td', tal.format(a.days_overdue), 'num'));
    tr.appendChild(el('td', a.excerpt, 'utdrag'));
    tbody.appendChild(tr);
  }
}

function arsval(s, valt) {
  const select = document.getElementById('ar');
  const finns = new Set(Array.from(select.options).map((o) => o.value));
  for (const ar of s.years) {
    if (!finns.has(String(ar))) select.appendChild(el('option', ar)).value = String(ar);
  }
  select.value = valt;
  const ar = valt || (s.years.length ? s.years[s.years.length - 1] : new Date().getFullYear());
  const lank = document.getElementById('rapportlank');
  lank.href = `/rapport/${ar}`;
  lank.textContent = `Årsrapport ${ar} för utskrift (PDF)`;
}

async function hamta(url) {
  const svar = await fetch(url, { headers: { Accept: 'application/json' } });
  if (!svar.ok) throw new Error(`${url}: ${svar.status}`);
  return svar.json();
}

async function ladda() {
  const valt = document.getElementById('ar').value;
  visa('Laddar …');
  try {
    const [s, f] = await Promise.all([
      hamta(valt ? `/api/sammanstallning.json?ar=${encodeURIComponent(valt)}` : '/api/sammanstallning.json'),
      hamta('/api/forsenade.json'),
    ]);
    arsval(s, valt);
    nyckeltal(s);
    document.getElementById('tidsgrans-grund').textContent = `${s.deadline.basis_label}.`;
    stapeldiagram('diagram-manad', s.by_month, (i) => manadsetikett(i, s.year !== null), 'Avvikelser per månad');
    liggandediagram('diagram-kategori', s.by_category, 'Avvikelser per kategori');
    liggandediagram('diagram-skadegrad', s.by_harm, 'Avvikelser per skadegrad');
    liggandediagram('diagram-delregion', s.by_subregion, 'Avvikelser per delregion');
    liggandediagram('diagram-eskalering', s.escalation.by_step, 'Avvikelser per högsta eskaleringssteg');
    stapeldiagram('diagram-kvittens', s.response_time.acknowledge.buckets, (i) => i.label, 'Tid till kvittens');
    stapeldiagram('diagram-svar', s.response_time.answer.buckets, (i) => i.label, 'Tid till svar');
    matt('matt-kvittens', s.response_time.acknowledge);
    matt('matt-svar', s.response_time.answer);
    liggandediagram('diagram-avtal', s.by_agreement, 'Avvikelser per delöverenskommelse');
    liggandediagram('diagram-vardform', s.by_care_setting, 'Avvikelser per vårdform');
    tydlighet('tydlighet-manad', 'Månad', s.clarity_by_month, (i) => manadsetikett(i, s.year !== null));
    tydlighet('tydlighet-avtal', 'Delöverenskommelse', s.by_agreement, (i) => i.label);
    tydlighet('tydlighet-vardform', 'Vårdform', s.by_care_setting, (i) => i.label);
    tabeller(s);
    forsenade(f);
    visa(`Uppdaterad ${s.now_local} (svensk tid). ${s.year === null ? 'Alla år' : `År ${s.year}`}.`);
  } catch (e) {
    visa(`Kunde inte hämta statistiken (${e.message}).`, true);
  }
}

document.addEventListener('DOMContentLoaded', () => {
  document.getElementById('ar').addEventListener('change', ladda);
  document.getElementById('val').addEventListener('submit', (e) => e.preventDefault());
  ladda();
});
