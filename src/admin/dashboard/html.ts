/** Text into HTML: every value on the page comes from etcd entries, i.e. from whoever can write there. */
export function esc(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A table with a caption and column headers; `rows` are already-escaped cells. */
export function table(caption: string, headers: readonly string[], rows: readonly (readonly string[])[], empty: string): string {
  if (rows.length === 0) return `<p class="empty">${esc(empty)}</p>`;
  // A short row leaves its last cells under the wrong headers for a screen reader: a bug, not data.
  const short = rows.find((cells) => cells.length !== headers.length);
  if (short) throw new Error(`dashboard table "${caption}": a row has ${short.length} cells for ${headers.length} columns`);
  const head = headers.map((h) => `<th scope="col">${esc(h)}</th>`).join('');
  const body = rows.map((cells) => `<tr>${cells.map((c, i) => (i === 0 ? `<th scope="row">${c}</th>` : `<td>${c}</td>`)).join('')}</tr>`).join('\n');
  return `<table><caption>${esc(caption)}</caption><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

export type Tone = 'ok' | 'bad' | 'warn' | 'neutral';

/**
 * A state as a word with a symbol, coloured by tone: the word and symbol carry the meaning on
 * their own, so colour is never the only signal (WCAG 1.4.1).
 */
export function badge(text: string, tone: Tone): string {
  const symbol = { ok: '✔', bad: '✖', warn: '▲', neutral: '●' }[tone];
  return `<span class="badge ${tone}" data-tone="${tone}"><span aria-hidden="true">${symbol} </span>${esc(text)}</span>`;
}

export function list(items: readonly string[]): string {
  return items.length === 0 ? '—' : items.map(esc).join('<br>');
}

/** 3 s, 4 min, 2 h 5 min, 3 d: a duration as people read it. */
export function ago(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '—';
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  return `${Math.floor(seconds / 86_400)} d`;
}
