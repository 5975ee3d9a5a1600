import type { JobStatus, LastRunLine } from '../interfaces.js';
import type { FailedFile, FailedFileDetail } from '../ops/failed-files.js';
import type { LogEntry } from '../ops/log-reader.js';
import { CSRF_FIELD } from './csrf.js';
import { AGE_BUCKETS, type Overview } from './overview.js';

/**
 * The dashboard's HTML pages, rendered on the server from plain data. Pure. Every value
 * that reaches the page goes through `esc` (text and attributes alike); the only scripts are
 * the overview's poller and the logs page's follower, inline and static.
 */

const ENTITIES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text made safe for HTML content and quoted attributes. */
export function esc(value: string | number | boolean | null | undefined): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

/** A duration in seconds as a short human string: 42s, 7m, 3h 5m, 2d 4h. */
export function formatAge(seconds: number): string {
  const s = Math.floor(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`;
}

const CSS = `
*{box-sizing:border-box}[hidden]{display:none!important}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2933;background:#f5f7fa}
header{background:#fff;border-bottom:1px solid #e4e7eb;padding:10px 24px;display:flex;gap:20px;align-items:center}
header b{font-size:16px;color:#243b53}
header a{color:#486581;text-decoration:none}header a:hover{color:#102a43}
header .ro{margin-left:auto;font-size:12px;background:#fff3c4;color:#8d2b0b;padding:2px 8px;border-radius:10px}
main{max-width:1100px;margin:0 auto;padding:20px 24px}
h1{font-size:20px;margin:4px 0 16px;color:#102a43}h2{font-size:15px;margin:24px 0 8px;color:#334e68}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:16px}
.card{background:#fff;border:1px solid #e4e7eb;border-radius:8px;padding:14px 16px;box-shadow:0 1px 2px rgba(16,42,67,.05)}
.card h3{margin:0 0 8px;font-size:15px;display:flex;justify-content:space-between}
.big{font-size:26px;font-weight:600;color:#102a43}.muted{color:#829ab1;font-size:12px}
.kv{display:flex;gap:24px;margin-bottom:10px}
.hist{display:grid;grid-template-columns:60px 1fr 48px;gap:3px 8px;align-items:center;font-size:12px;margin:8px 0}
.bar{height:10px;background:#e4e7eb;border-radius:5px;overflow:hidden}.bar i{display:block;height:100%;background:#3e7cb1;border-radius:5px}
.num{text-align:right;font-variant-numeric:tabular-nums}
.pill{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;background:#e4e7eb;color:#334e68;margin:2px 4px 2px 0}
.pill.bad{background:#ffe3e3;color:#a61b1b}.pill.warn{background:#fff3c4;color:#8d2b0b}.pill.ok{background:#e3f9e5;color:#207227}
table{width:100%;border-collapse:collapse;background:#fff;border:1px solid #e4e7eb;border-radius:8px;overflow:hidden}
th,td{padding:7px 10px;border-bottom:1px solid #f0f4f8;text-align:left;vertical-align:top}
th{background:#f0f4f8;font-weight:600;color:#486581;font-size:12px}
td a,dd a{color:#2680c2}
a.pill{text-decoration:none}
pre{background:#102a43;color:#f0f4f8;padding:12px;border-radius:6px;overflow:auto;white-space:pre-wrap;word-break:break-word}
form.inline{display:inline}
button{font:inherit;padding:6px 14px;border-radius:6px;border:1px solid #bcccdc;background:#fff;cursor:pointer}
button.primary{background:#2680c2;border-color:#2680c2;color:#fff}button.danger{color:#a61b1b;border-color:#f29b9b}
.filters{display:flex;gap:8px;margin-bottom:12px}.filters input,.filters select{font:inherit;padding:5px 8px;border:1px solid #bcccdc;border-radius:6px}
.notice{background:#e3f9e5;border:1px solid #91e697;padding:8px 12px;border-radius:6px;margin-bottom:12px}
dl{display:grid;grid-template-columns:140px 1fr;gap:6px 12px;background:#fff;border:1px solid #e4e7eb;border-radius:8px;padding:14px}
dt{color:#627d98}dd{margin:0}
.card .row{display:flex;justify-content:space-between;align-items:center;margin-top:10px;font-size:13px}
.card .row button{padding:3px 12px;font-size:12px}
.blocked{background:#ffe3e3;color:#a61b1b;border-radius:6px;padding:4px 8px;font-size:12px;margin-top:8px}
.chart{background:#fff;border:1px solid #e4e7eb;border-radius:8px;padding:10px 14px}
.chart svg{display:block;width:100%;height:auto}
.legend{display:flex;gap:16px;font-size:12px;color:#486581;margin-top:4px}.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;vertical-align:-1px}
#failed td:first-child{white-space:nowrap;font:12px/1.9 ui-monospace,SFMono-Regular,Menlo,monospace}
.bulk{display:flex;gap:12px;align-items:center;margin:-4px 0 12px}
.pages{display:flex;gap:12px;align-items:center;margin-top:10px;font-size:13px}.pages a{color:#2680c2}
ol.timeline{list-style:none;margin:0 0 16px;padding:0 0 0 18px;border-left:2px solid #d9e2ec}
ol.timeline li{position:relative;margin:0 0 12px;padding-left:8px}
ol.timeline li::before{content:"";position:absolute;left:-25px;top:5px;width:10px;height:10px;border-radius:50%;background:#9fb3c8;border:2px solid #f5f7fa}
ol.timeline li.ok::before{background:#3ebd93}ol.timeline li.bad::before{background:#e66a6a}ol.timeline li.now::before{background:#2680c2}
ol.timeline b{display:inline-block;min-width:90px;color:#334e68}
#log{max-height:70vh;font:12px/1.5 ui-monospace,SFMono-Regular,Menlo,monospace}#log .error{color:#ffbdbd}
`;

function layout(title: string, body: string, readOnly: boolean, script = ''): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)} · querybatch</title><style>${CSS}</style></head><body>
<header><b>querybatch</b><a href="/">Overview</a><a href="/failed">Failed</a><a href="/logs">Logs</a>${readOnly ? '<span class="ro">read-only</span>' : ''}</header>
<main>${body}</main>${script}</body></html>`;
}

const CLASS_PILL: Readonly<Record<string, string>> = { failed: 'bad', connection: 'warn', uncertain: 'bad', other: '' };

function datasourceCard(ds: Overview['datasources'][number], csrf: string, readOnly: boolean): string {
  const max = Math.max(1, ...ds.ages);
  const hist = AGE_BUCKETS.map((b, i) => {
    const n = ds.ages[i] ?? 0;
    return `<span>${esc(b.label)}</span><span class="bar"><i data-f="bar${i}" style="width:${Math.round((100 * n) / max)}%"></i></span><span class="num" data-f="h${i}">${n}</span>`;
  }).join('');
  const failed = Object.entries(ds.failed)
    .map(([cls, n]) => `<a class="pill ${n > 0 ? CLASS_PILL[cls] ?? '' : ''}" href="/failed?class=${esc(cls)}&amp;datasource=${esc(encodeURIComponent(ds.name))}">${esc(cls)} <b data-f="failed-${esc(cls)}">${n}</b></a>`)
    .join('');
  const name = esc(encodeURIComponent(ds.name));
  // Both forms are rendered; the one that does not apply is hidden (the poller swaps them).
  const control = (verb: 'pause' | 'resume', hidden: boolean) => `<form class="inline" method="post" action="/datasources/${name}/${verb}" data-f="${verb}"${hidden ? ' hidden' : ''}><input type="hidden" name="${CSRF_FIELD}" value="${esc(csrf)}"><button type="submit">${verb === 'pause' ? 'Pause' : 'Resume'}</button></form>`;
  const controls = readOnly || ds.name === 'unknown' ? '' : `${control('pause', ds.paused)}${control('resume', !ds.paused)}`;
  const first = ds.inFlight.first;
  return `<section class="card" data-ds="${esc(ds.name)}">
<h3><span>${esc(ds.name)}</span><span data-f="paused" class="pill ${ds.paused ? 'warn' : 'ok'}">${ds.paused ? 'paused' : 'active'}</span></h3>
<div class="kv"><div><div class="big" data-f="pending">${ds.pending}</div><div class="muted">pending</div></div>
<div><div class="big" data-f="oldest">${ds.pending === 0 ? '–' : esc(formatAge(ds.oldestAgeSeconds))}</div><div class="muted">oldest</div></div>
<div><div class="big" data-f="inflight">${ds.inFlight.jobs}</div><div class="muted">in flight</div></div></div>
<div class="muted">pending by age</div><div class="hist">${hist}</div>
<div class="muted">failed files</div><div>${failed}</div>
<div class="blocked" data-f="blocked"${ds.blocked === null ? ' hidden' : ''}>blocked (strictOrder) by <a data-f="blocked-link" href="/failed/${esc(encodeURIComponent(ds.blocked ?? ''))}">${esc(ds.blocked ?? '')}</a></div>
<div class="row"><span class="muted">running now: <a data-f="first" href="/jobs/${esc(first ?? '')}"${first === null ? ' hidden' : ''}>${esc(first ?? '')}</a><span data-f="idle"${first === null ? '' : ' hidden'}>nothing</span></span><span>${controls}</span></div></section>`;
}

/** How many runs the chart shows (the table the last RUNS_LISTED of them). */
export const CHART_RUNS = 30;
const RUNS_LISTED = 10;

/**
 * The last runs as an inline SVG, oldest left: a bar per run, jobs that succeeded (green)
 * under jobs that failed (red), on the left scale; the average job time as a blue line on
 * the right scale. Drawn here, no chart library. Pure.
 */
export function runsChart(runsNewestFirst: readonly LastRunLine[]): string {
  const runs = [...runsNewestFirst].slice(0, CHART_RUNS).reverse();
  if (runs.length === 0) return '';
  const W = 1000, H = 180, L = 48, R = 56, T = 10, B = 24;
  const plotW = W - L - R, plotH = H - T - B;
  const failedOf = (r: LastRunLine) => r.sqlFailed + r.connectionFailed;
  const maxJobs = niceCeil(Math.max(1, ...runs.map((r) => r.success + failedOf(r))));
  const maxAvg = niceCeil(Math.max(1, ...runs.map((r) => r.avgMs)));
  // At least 12 slots: a few runs do not make bars a tenth of the width wide.
  const slot = plotW / Math.max(12, runs.length);
  const barW = Math.max(4, slot * 0.6);
  const y = (n: number) => T + plotH - (plotH * n) / maxJobs;
  const bars = runs.map((r, i) => {
    const x = L + slot * i + (slot - barW) / 2;
    const ok = r.success, bad = failedOf(r);
    const title = `<title>${esc(r.time)}: ${ok} succeeded, ${bad} failed, ${r.totalMs} ms, avg ${r.avgMs} ms</title>`;
    return `<g class="run">${title}<rect x="${x.toFixed(1)}" y="${y(ok).toFixed(1)}" width="${barW.toFixed(1)}" height="${(T + plotH - y(ok)).toFixed(1)}" fill="#3ebd93" rx="2"/>`
      + (bad > 0 ? `<rect x="${x.toFixed(1)}" y="${y(ok + bad).toFixed(1)}" width="${barW.toFixed(1)}" height="${(y(ok) - y(ok + bad)).toFixed(1)}" fill="#e66a6a" rx="2"/>` : '') + '</g>';
  }).join('');
  const points = runs.map((r, i) => `${(L + slot * i + slot / 2).toFixed(1)},${(T + plotH - (plotH * r.avgMs) / maxAvg).toFixed(1)}`);
  const grid = [0, 0.5, 1].map((f) => {
    const gy = (T + plotH - plotH * f).toFixed(1);
    return `<line x1="${L}" x2="${W - R}" y1="${gy}" y2="${gy}" stroke="#e4e7eb"/><text x="${L - 6}" y="${gy}" dy="4" text-anchor="end">${Math.round(maxJobs * f)}</text><text x="${W - R + 6}" y="${gy}" dy="4" fill="#2680c2">${Math.round(maxAvg * f)} ms</text>`;
  }).join('');
  const firstLast = `<text x="${L}" y="${H - 6}">${esc(shortTime(runs[0]!.time))}</text><text x="${L + slot * (runs.length - 1) + slot / 2}" y="${H - 6}" text-anchor="${runs.length > 1 ? 'middle' : 'start'}">${runs.length > 1 ? esc(shortTime(runs.at(-1)!.time)) : ''}</text>`;
  return `<div class="chart"><svg id="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="jobs per run and average job time, last ${runs.length} runs" font-size="12" fill="#627d98" font-family="system-ui,sans-serif">
${grid}${bars}<polyline points="${points.join(' ')}" fill="none" stroke="#2680c2" stroke-width="2"/>${points.map((p) => `<circle cx="${p.split(',')[0]}" cy="${p.split(',')[1]}" r="3" fill="#2680c2"/>`).join('')}${firstLast}</svg>
<div class="legend"><span><i style="background:#3ebd93"></i>succeeded</span><span><i style="background:#e66a6a"></i>failed (SQL or connection)</span><span><i style="background:#2680c2"></i>average per job (right scale)</span><span class="muted">last ${runs.length} runs, oldest left</span></div></div>`;
}

/** 1, 2, 5 × 10^k at or above n. */
function niceCeil(n: number): number {
  const p = 10 ** Math.floor(Math.log10(n));
  return [1, 2, 5, 10].map((m) => m * p).find((v) => v >= n)!;
}

/** `2026-11-29T16:40:01.123Z` → `16:40:01` (a run-log time as written); anything else as is. */
function shortTime(time: string): string {
  return /T(\d\d:\d\d:\d\d)/.exec(time)?.[1] ?? time;
}

function runsTable(runs: Overview['runs']): string {
  const rows = runs.slice(0, RUNS_LISTED).map((r) => `<tr><td>${esc(r.time)}</td><td class="num">${r.success}</td><td class="num">${r.sqlFailed}</td><td class="num">${r.connectionFailed}</td><td class="num">${r.totalMs} ms</td><td class="num">${r.avgMs} ms</td></tr>`).join('');
  return `<table id="runs"><thead><tr><th>Finished</th><th class="num">Succeeded</th><th class="num">SQL failed</th><th class="num">Connection failed</th><th class="num">Total</th><th class="num">Avg</th></tr></thead>
<tbody>${rows || '<tr><td colspan="6" class="muted">No run logged yet.</td></tr>'}</tbody></table>`;
}

/** Polls /api/overview every 5 s and updates the numbers in place (no framework, no build). */
const POLLER = `<script>
(function(){
  function age(s){s=Math.floor(s);if(s<60)return s+'s';if(s<3600)return Math.floor(s/60)+'m';if(s<86400)return Math.floor(s/3600)+'h '+Math.floor(s%3600/60)+'m';return Math.floor(s/86400)+'d '+Math.floor(s%86400/3600)+'h';}
  function set(card,f,v){var e=card.querySelector('[data-f="'+f+'"]');if(e)e.textContent=String(v);return e;}
  async function tick(){
    try{
      var r=await fetch('/api/overview',{credentials:'same-origin'});if(!r.ok)return;var o=await r.json();
      o.datasources.forEach(function(ds){
        var card=document.querySelector('[data-ds="'+CSS.escape(ds.name)+'"]');if(!card)return;
        set(card,'pending',ds.pending);set(card,'oldest',ds.pending===0?'\\u2013':age(ds.oldestAgeSeconds));
        var p=set(card,'paused',ds.paused?'paused':'active');if(p)p.className='pill '+(ds.paused?'warn':'ok');
        var max=Math.max.apply(null,[1].concat(ds.ages));
        ds.ages.forEach(function(n,i){set(card,'h'+i,n);var b=card.querySelector('[data-f="bar'+i+'"]');if(b)b.style.width=Math.round(100*n/max)+'%';});
        Object.keys(ds.failed).forEach(function(c){set(card,'failed-'+c,ds.failed[c]);});
        set(card,'inflight',ds.inFlight.jobs);
        var first=set(card,'first',ds.inFlight.first||'');if(first){first.href='/jobs/'+encodeURIComponent(ds.inFlight.first||'');first.hidden=!ds.inFlight.first;}
        var idle=card.querySelector('[data-f="idle"]');if(idle)idle.hidden=!!ds.inFlight.first;
        var bl=card.querySelector('[data-f="blocked"]');if(bl){bl.hidden=!ds.blocked;var a=set(card,'blocked-link',ds.blocked||'');if(a)a.href='/failed/'+encodeURIComponent(ds.blocked||'');}
        var pf=card.querySelector('[data-f="pause"]'),rf=card.querySelector('[data-f="resume"]');if(pf&&rf){pf.hidden=ds.paused;rf.hidden=!ds.paused;}
      });
      document.getElementById('updated').textContent=new Date(o.at).toLocaleTimeString();
    }catch(e){}
  }
  setInterval(tick,5000);
})();
</script>`;

export function overviewPage(o: Overview, readOnly: boolean, csrf: string, notice?: string): string {
  const cards = o.datasources.map((ds) => datasourceCard(ds, csrf, readOnly)).join('') || '<p class="muted">No datasource is configured.</p>';
  return layout('Overview', `<h1>Overview <span class="muted">updated <span id="updated">${esc(new Date(o.at).toLocaleTimeString('en-GB'))}</span> · every 5 s</span></h1>
${notice ? `<div class="notice">${esc(notice)}</div>` : ''}<div class="cards">${cards}</div><h2>Last runs</h2>${runsChart(o.runs)}${o.runs.length > 0 ? '<div style="height:12px"></div>' : ''}${runsTable(o.runs)}`, readOnly, POLLER);
}

export interface FailedFilter {
  readonly class?: string | undefined;
  readonly datasource?: string | undefined;
  readonly text?: string | undefined;
}

/** The files a filter keeps: class and datasource exactly, text anywhere in the name, id, code or message (case-insensitive). Pure. */
export function filterFailed(files: readonly FailedFile[], f: FailedFilter): FailedFile[] {
  const text = f.text?.trim().toLowerCase();
  return files.filter((file) =>
    (!f.class || file.class === f.class)
    && (!f.datasource || file.datasource === f.datasource)
    && (!text || [file.name, file.id, file.lastError?.code, file.lastError?.message].some((v) => v?.toLowerCase().includes(text))));
}

/** Failed files a page shows. */
export const FAILED_PAGE_SIZE = 100;

/** One page of the failed list: the files the filter keeps, newest job first. */
export interface FailedListView {
  /** This page's files. */
  readonly files: readonly FailedFile[];
  /** Files the filter keeps, over every page. */
  readonly matched: number;
  /** Files in failed/. */
  readonly total: number;
  /** How many of `matched` the bulk Respool would leave (uncertain ones: respooled one by one, after a check). */
  readonly uncertain: number;
  readonly page: number;
  readonly pages: number;
  readonly filter: FailedFilter;
  readonly datasources: readonly string[];
}

/** The files a filter keeps, newest job first (files without a job id last), cut to page `page` (1-based, clamped). Pure. */
export function failedListView(all: readonly FailedFile[], filter: FailedFilter, page: number, pageSize = FAILED_PAGE_SIZE): FailedListView {
  const kept = filterFailed(all, filter).sort(newestFirst);
  const { p, pages, slice } = pageOf(kept, page, pageSize);
  return {
    files: slice,
    matched: kept.length,
    total: all.length,
    uncertain: kept.filter((f) => f.class === 'uncertain').length,
    page: p,
    pages,
    filter,
    datasources: [...new Set(all.flatMap((f) => (f.datasource === null ? [] : [f.datasource])))].sort(),
  };
}

/** The failed list's order: newest id first, then by name; names without an id last. */
export function newestFirst(x: { readonly id: string | null; readonly name: string }, y: { readonly id: string | null; readonly name: string }): number {
  const a = x.id ?? '', b = y.id ?? '';
  return a === b ? (x.name < y.name ? -1 : 1) : a < b ? 1 : -1;
}

/** Page `page` (1-based, clamped to the pages there are) of `items`. */
export function pageOf<T>(items: readonly T[], page: number, pageSize = FAILED_PAGE_SIZE): { p: number; pages: number; slice: T[] } {
  const pages = Math.max(1, Math.ceil(items.length / pageSize));
  const p = Math.min(pages, Math.max(1, Number.isSafeInteger(page) ? page : 1));
  return { p, pages, slice: items.slice((p - 1) * pageSize, p * pageSize) };
}

/** The query string of a filter (and page), for links. */
function filterQuery(f: FailedFilter, page?: number): string {
  const q = new URLSearchParams();
  if (f.class) q.set('class', f.class);
  if (f.datasource) q.set('datasource', f.datasource);
  if (f.text) q.set('text', f.text);
  if (page !== undefined && page > 1) q.set('page', String(page));
  const text = q.toString();
  return text ? `?${text}` : '';
}

export function failedListPage(v: FailedListView, readOnly: boolean, csrf: string, notice?: string): string {
  const f = v.filter;
  const option = (value: string, current: string | undefined, label = value) => `<option value="${esc(value)}"${value === (current ?? '') ? ' selected' : ''}>${esc(label)}</option>`;
  const rows = v.files.map((file) => `<tr><td><a href="/failed/${esc(encodeURIComponent(file.name))}">${esc(file.name)}</a></td>
<td><span class="pill ${CLASS_PILL[file.class] ?? ''}">${esc(file.class)}</span></td><td>${esc(file.datasource ?? '–')}</td>
<td class="num">${esc(formatAge(file.ageMs / 1000))}</td><td class="num">${esc(file.attempts ?? '–')}</td>
<td>${esc(file.lastError ? `${file.lastError.code}: ${file.lastError.message}` : '')}</td></tr>`).join('');
  const respoolable = v.matched - v.uncertain;
  const hidden = (name: string, value: string | undefined) => `<input type="hidden" name="${name}" value="${esc(value ?? '')}">`;
  const bulk = readOnly || respoolable === 0 ? '' : `<form class="bulk" method="post" action="/failed/respool">${hidden(CSRF_FIELD, csrf)}${hidden('class', f.class)}${hidden('datasource', f.datasource)}${hidden('text', f.text)}
<button type="submit" class="primary" id="bulk-respool">Respool all ${respoolable} of this filter</button>${v.uncertain > 0 ? `<span class="muted">${v.uncertain} uncertain left out: check each, then respool it from its page</span>` : ''}</form>`;
  const pager = v.pages <= 1 ? '' : `<div class="pages">${v.page > 1 ? `<a href="/failed${esc(filterQuery(f, v.page - 1))}" rel="prev">← newer</a>` : ''}<span class="muted">page ${v.page} of ${v.pages}</span>${v.page < v.pages ? `<a href="/failed${esc(filterQuery(f, v.page + 1))}" rel="next">older →</a>` : ''}</div>`;
  const shown = v.pages <= 1 ? `${v.matched} of ${v.total}` : `${v.matched} of ${v.total}, ${(v.page - 1) * FAILED_PAGE_SIZE + 1}–${(v.page - 1) * FAILED_PAGE_SIZE + v.files.length} shown`;
  return layout('Failed', `<h1>Failed files <span class="muted" id="count">${shown}</span></h1>
${notice ? `<div class="notice">${esc(notice)}</div>` : ''}
<form class="filters" method="get" action="/failed">
<select name="class">${option('', f.class, 'any class')}${['failed', 'connection', 'uncertain', 'other'].map((c) => option(c, f.class)).join('')}</select>
<select name="datasource">${option('', f.datasource, 'any datasource')}${v.datasources.map((d) => option(d, f.datasource)).join('')}</select>
<input name="text" placeholder="text in name, code, message" value="${esc(f.text ?? '')}"><button type="submit">Filter</button></form>
${bulk}<table id="failed"><thead><tr><th>File</th><th>Class</th><th>Datasource</th><th class="num">Age</th><th class="num">Attempts</th><th>Last error</th></tr></thead>
<tbody>${rows || '<tr><td colspan="6" class="muted">No failed file matches.</td></tr>'}</tbody></table>${pager}`, readOnly);
}

export function failedDetailPage(d: FailedFileDetail, showParams: boolean, csrf: string, readOnly: boolean): string {
  const name = encodeURIComponent(d.name);
  const e = d.lastError;
  const params = showParams
    ? `<pre id="params">${esc(JSON.stringify(d.params, null, 2))}</pre>`
    : `<p>${esc(d.paramsSummary ?? 'none')} <a href="/failed/${esc(name)}?showParams=1">show values</a></p>`;
  const action = (verb: 'respool' | 'delete', label: string, cls: string) =>
    `<form class="inline" method="post" action="/failed/${esc(name)}/${verb}"><input type="hidden" name="${CSRF_FIELD}" value="${esc(csrf)}"><button type="submit" class="${cls}">${label}</button></form>`;
  const actions = readOnly ? '' : `<p id="actions">${action('respool', 'Respool', 'primary')} ${action('delete', 'Delete', 'danger')}</p>`;
  return layout(d.name, `<h1>${esc(d.name)}</h1>${actions}
<dl><dt>Class</dt><dd><span class="pill ${CLASS_PILL[d.class] ?? ''}">${esc(d.class)}</span></dd>
<dt>Job</dt><dd>${d.id ? `<a href="/jobs/${esc(d.id)}">${esc(d.id)}</a>` : '–'}</dd>
<dt>Datasource</dt><dd>${esc(d.datasource ?? '–')}</dd><dt>Spooled</dt><dd>${esc(d.createdAt ?? '–')}</dd>
<dt>Attempts</dt><dd>${esc(d.attempts ?? '–')}</dd>
<dt>Error</dt><dd>${e ? `<b>${esc(e.code)}</b>${e.errno !== undefined ? ` (errno ${esc(e.errno)})` : ''} at ${esc(e.at)}<br>${esc(e.message)}` : '–'}</dd></dl>
<h2>SQL</h2>${d.sql !== null ? `<pre id="sql">${esc(d.sql)}</pre>` : d.script ? `<p>A script: ${d.script.statements} statements, ${d.script.done} committed, ${d.script.bytes} bytes.</p>` : '<p class="muted">Not readable.</p>'}
<h2>Params</h2>${params}`, readOnly);
}

/** What the job page knows besides status(id). */
export interface JobTimes {
  /** When it was spooled: the time its id carries. */
  readonly spooledAt: string;
  /** When a runner claimed it (its claim file's ctime: the rename into spool/.active), while it runs; else null. */
  readonly claimedAt: string | null;
}

interface Step {
  readonly label: string;
  readonly at: string | null;
  readonly text: string;
  readonly cls: '' | 'ok' | 'bad' | 'now';
}

/**
 * A job's steps in order: spooled, claimed or queued, finished (or failed, or cancelled). A
 * finished job's claim time comes from its outcome (absent in records from before it was
 * kept: then no claimed step). Pure.
 */
export function jobTimeline(s: JobStatus, times: JobTimes): Step[] {
  const steps: Step[] = [{ label: 'spooled', at: times.spooledAt, text: 'datasource' in s && s.datasource ? `on ${s.datasource}` : '', cls: '' }];
  switch (s.state) {
    case 'queued':
      steps.push({ label: 'queued', at: null, text: `position ${s.position} in ${s.datasource}${s.attempts > 0 ? `, ${s.attempts} attempt${s.attempts === 1 ? '' : 's'} so far` : ''}${s.priority !== 'normal' ? `, priority ${s.priority}` : ''}`, cls: 'now' });
      break;
    case 'running':
      steps.push({ label: 'claimed', at: times.claimedAt, text: `by runner ${s.runner}${s.runnerDead ? ' (dead: the next run gives it back to the spool)' : ''}${s.script ? `; script ${s.script.done} of ${s.script.statements} statements committed` : ''}`, cls: 'now' });
      break;
    case 'succeeded': {
      if (s.claimedAt !== undefined) steps.push({ label: 'claimed', at: s.claimedAt, text: 'by the runner that ran it', cls: '' });
      const ran = new Date(Date.parse(s.finishedAt) - s.durationMs).toISOString();
      steps.push({ label: 'ran', at: ran, text: `statement started (${s.durationMs} ms on the server)`, cls: '' });
      steps.push({ label: 'succeeded', at: s.finishedAt, text: `${s.affectedRows} row${s.affectedRows === 1 ? '' : 's'} affected`, cls: 'ok' });
      break;
    }
    case 'failed':
      if (s.claimedAt !== undefined) steps.push({ label: 'claimed', at: s.claimedAt, text: 'by the runner that failed it', cls: '' });
      steps.push({ label: 'failed', at: s.finishedAt, text: `${s.class}${s.attempts !== null ? ` after ${s.attempts} attempt${s.attempts === 1 ? '' : 's'}` : ''}${s.code ? `: ${s.code}` : ''}${s.message ? ` ${s.message}` : ''}`, cls: 'bad' });
      break;
    case 'cancelled':
      steps.push({ label: 'cancelled', at: s.cancelledAt, text: 'removed from the spool before it ran', cls: 'bad' });
      break;
    case 'unknown':
      steps.push({ label: 'unknown', at: null, text: 'not in the spool, not claimed, not in failed/, and no outcome kept (never spooled here, or finished longer ago than outcomes are kept)', cls: '' });
      break;
  }
  return steps;
}

export function jobPage(s: JobStatus, times: JobTimes, readOnly: boolean): string {
  const timeline = jobTimeline(s, times).map((step) => `<li class="${step.cls}" data-step="${esc(step.label)}"><b>${esc(step.label)}</b> <time>${esc(step.at ?? '')}</time>${step.text ? `<div class="muted">${esc(step.text)}</div>` : ''}</li>`).join('');
  const rows = Object.entries(s).filter(([k]) => k !== 'id').map(([k, v]) => {
    const value = k === 'file' && typeof v === 'string' ? `<a href="/failed/${esc(encodeURIComponent(v))}">${esc(v)}</a>` : esc(typeof v === 'object' && v !== null ? JSON.stringify(v) : (v as string | number | boolean | undefined) ?? '–');
    return `<dt>${esc(k)}</dt><dd>${value}</dd>`;
  }).join('');
  return layout(`Job ${s.id}`, `<h1>Job ${esc(s.id)}</h1><ol class="timeline" id="timeline">${timeline}</ol><dl id="job">${rows}</dl>`, readOnly);
}

/** Follows /logs/stream (server-sent events) and appends each new line; keeps the last 2,000. */
const FOLLOWER = `<script>
(function(){
  var log=document.getElementById('log'),state=document.getElementById('live');
  var es=new EventSource('/logs/stream'+location.search);
  es.onopen=function(){state.textContent='following';state.className='pill ok';};
  es.onerror=function(){state.textContent='reconnecting';state.className='pill warn';};
  es.onmessage=function(m){
    var e=JSON.parse(m.data),atEnd=log.scrollTop+log.clientHeight>=log.scrollHeight-4;
    var empty=document.getElementById('empty');if(empty)empty.remove();
    var d=document.createElement('div');d.className='line '+e.log;d.textContent=e.line;log.appendChild(d);
    while(log.children.length>2000)log.removeChild(log.firstChild);
    if(atEnd)log.scrollTop=log.scrollHeight;
  };
})();
</script>`;

/** Lines the logs page starts with. */
export const LOG_LINES_SHOWN = 200;

export function logsPage(entries: readonly LogEntry[], errorsOnly: boolean, readOnly: boolean): string {
  const lines = entries.map((e) => `<div class="line ${e.record.log}">${esc(e.line)}</div>`).join('');
  return layout('Logs', `<h1>Logs <span class="muted">run log and error log, newest last</span> <span id="live" class="pill">connecting</span></h1>
<form class="filters" method="get" action="/logs"><label><input type="checkbox" name="errors" value="1"${errorsOnly ? ' checked' : ''} onchange="this.form.submit()"> errors only</label><noscript><button type="submit">Apply</button></noscript></form>
<pre id="log">${lines || '<div id="empty" class="muted">Nothing logged yet.</div>'}</pre>`, readOnly, FOLLOWER);
}

/** What a browser gets without a valid token: how to pass one. */
export function unauthorizedPage(): string {
  return layout('Token needed', `<h1>A token is needed</h1>
<p>This dashboard was started with a token. Open it once with the token in the address, for example:</p>
<pre>/?token=&lt;token&gt;</pre>
<p>The answer sets a session cookie (an HMAC of the token, <code>HttpOnly</code>), so later pages need no token in the address. Scripts and Prometheus send <code>Authorization: Bearer &lt;token&gt;</code> instead.</p>
<p class="muted">The token is the one given to <code>querybatch dashboard --token</code>, <code>dashboard.token</code> in querybatch.config.json, or QUERYBATCH_DASHBOARD_TOKEN.</p>`, false).replace(/<header>[\s\S]*?<\/header>/, '<header><b>querybatch</b></header>');
}

export function errorPage(status: number, message: string, readOnly: boolean): string {
  return layout(String(status), `<h1>${status}</h1><p>${esc(message)}</p>`, readOnly);
}
