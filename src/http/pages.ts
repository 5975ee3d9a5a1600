import type { JobStatus } from '../interfaces.js';
import type { FailedFile, FailedFileDetail } from '../ops/failed-files.js';
import { CSRF_FIELD } from './csrf.js';
import { AGE_BUCKETS, type Overview } from './overview.js';

/**
 * The dashboard's HTML pages, rendered on the server from plain data. Pure. Every value
 * that reaches the page goes through `esc` (text and attributes alike); the only script is
 * the overview's poller, inline and static.
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
*{box-sizing:border-box}
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
`;

function layout(title: string, body: string, readOnly: boolean, script = ''): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)} · querybatch</title><style>${CSS}</style></head><body>
<header><b>querybatch</b><a href="/">Overview</a><a href="/failed">Failed</a>${readOnly ? '<span class="ro">read-only</span>' : ''}</header>
<main>${body}</main>${script}</body></html>`;
}

const CLASS_PILL: Readonly<Record<string, string>> = { failed: 'bad', connection: 'warn', uncertain: 'bad', other: '' };

function datasourceCard(ds: Overview['datasources'][number]): string {
  const max = Math.max(1, ...ds.ages);
  const hist = AGE_BUCKETS.map((b, i) => {
    const n = ds.ages[i] ?? 0;
    return `<span>${esc(b.label)}</span><span class="bar"><i data-f="bar${i}" style="width:${Math.round((100 * n) / max)}%"></i></span><span class="num" data-f="h${i}">${n}</span>`;
  }).join('');
  const failed = Object.entries(ds.failed)
    .map(([cls, n]) => `<a class="pill ${n > 0 ? CLASS_PILL[cls] ?? '' : ''}" href="/failed?class=${esc(cls)}&amp;datasource=${esc(encodeURIComponent(ds.name))}">${esc(cls)} <b data-f="failed-${esc(cls)}">${n}</b></a>`)
    .join('');
  return `<section class="card" data-ds="${esc(ds.name)}">
<h3><span>${esc(ds.name)}</span><span data-f="paused" class="pill ${ds.paused ? 'warn' : 'ok'}">${ds.paused ? 'paused' : 'active'}</span></h3>
<div class="kv"><div><div class="big" data-f="pending">${ds.pending}</div><div class="muted">pending</div></div>
<div><div class="big" data-f="oldest">${ds.pending === 0 ? '–' : esc(formatAge(ds.oldestAgeSeconds))}</div><div class="muted">oldest</div></div></div>
<div class="muted">pending by age</div><div class="hist">${hist}</div>
<div class="muted">failed files</div><div>${failed}</div></section>`;
}

function runsTable(runs: Overview['runs']): string {
  const rows = runs.map((r) => `<tr><td>${esc(r.time)}</td><td class="num">${r.success}</td><td class="num">${r.sqlFailed}</td><td class="num">${r.connectionFailed}</td><td class="num">${r.totalMs} ms</td><td class="num">${r.avgMs} ms</td></tr>`).join('');
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
      });
      document.getElementById('updated').textContent=new Date(o.at).toLocaleTimeString();
    }catch(e){}
  }
  setInterval(tick,5000);
})();
</script>`;

export function overviewPage(o: Overview, readOnly: boolean): string {
  const cards = o.datasources.map(datasourceCard).join('') || '<p class="muted">No datasource is configured.</p>';
  return layout('Overview', `<h1>Overview <span class="muted">updated <span id="updated">${esc(new Date(o.at).toLocaleTimeString('en-GB'))}</span> · every 5 s</span></h1>
<div class="cards">${cards}</div><h2>Last runs</h2>${runsTable(o.runs)}`, readOnly, POLLER);
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

export function failedListPage(files: readonly FailedFile[], total: number, f: FailedFilter, datasources: readonly string[], readOnly: boolean, notice?: string): string {
  const option = (value: string, current: string | undefined, label = value) => `<option value="${esc(value)}"${value === (current ?? '') ? ' selected' : ''}>${esc(label)}</option>`;
  const rows = files.map((file) => `<tr><td><a href="/failed/${esc(encodeURIComponent(file.name))}">${esc(file.name)}</a></td>
<td><span class="pill ${CLASS_PILL[file.class] ?? ''}">${esc(file.class)}</span></td><td>${esc(file.datasource ?? '–')}</td>
<td class="num">${esc(formatAge(file.ageMs / 1000))}</td><td class="num">${esc(file.attempts ?? '–')}</td>
<td>${esc(file.lastError ? `${file.lastError.code}: ${file.lastError.message}` : '')}</td></tr>`).join('');
  return layout('Failed', `<h1>Failed files <span class="muted">${files.length} of ${total}</span></h1>
${notice ? `<div class="notice">${esc(notice)}</div>` : ''}
<form class="filters" method="get" action="/failed">
<select name="class">${option('', f.class, 'any class')}${['failed', 'connection', 'uncertain', 'other'].map((c) => option(c, f.class)).join('')}</select>
<select name="datasource">${option('', f.datasource, 'any datasource')}${datasources.map((d) => option(d, f.datasource)).join('')}</select>
<input name="text" placeholder="text in name, code, message" value="${esc(f.text ?? '')}"><button type="submit">Filter</button></form>
<table id="failed"><thead><tr><th>File</th><th>Class</th><th>Datasource</th><th class="num">Age</th><th class="num">Attempts</th><th>Last error</th></tr></thead>
<tbody>${rows || '<tr><td colspan="6" class="muted">No failed file matches.</td></tr>'}</tbody></table>`, readOnly);
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

export function jobPage(s: JobStatus, readOnly: boolean): string {
  const rows = Object.entries(s).filter(([k]) => k !== 'id').map(([k, v]) => {
    const value = k === 'file' && typeof v === 'string' ? `<a href="/failed/${esc(encodeURIComponent(v))}">${esc(v)}</a>` : esc(typeof v === 'object' && v !== null ? JSON.stringify(v) : (v as string | number | boolean | undefined) ?? '–');
    return `<dt>${esc(k)}</dt><dd>${value}</dd>`;
  }).join('');
  return layout(`Job ${s.id}`, `<h1>Job ${esc(s.id)}</h1><dl id="job">${rows}</dl>`, readOnly);
}

export function errorPage(status: number, message: string, readOnly: boolean): string {
  return layout(String(status), `<h1>${status}</h1><p>${esc(message)}</p>`, readOnly);
}
