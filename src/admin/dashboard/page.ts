import type { Asset } from './assets.js';
import { assetUrl } from './assets.js';
import { esc } from './html.js';
import { renderSections, type DashboardData, type SectionId } from './sections.js';

const TITLES: Readonly<Record<SectionId, string>> = {
  overview: 'Overview',
  services: 'Services',
  routes: 'Route order',
  instances: 'Instances',
  applies: 'Applies',
  rejected: 'Rejected entries',
  certificates: 'Certificates',
  etcd: 'etcd',
  peers: 'Peers',
  acme: "Let's Encrypt (ACME)",
};

/**
 * The whole page, rendered on the server: without JavaScript it is a complete, readable snapshot
 * (reload for a newer one); with it, dashboard.js replaces the sections from /events.
 */
export function renderPage(data: DashboardData, assets: ReadonlyMap<string, Asset>): string {
  const sections = renderSections(data);
  const parts = (Object.keys(TITLES) as SectionId[])
    .map(
      (id) => `<section aria-labelledby="h-${id}">\n<h2 id="h-${id}">${esc(TITLES[id])}</h2>\n<div id="${id}" class="live">${sections[id]}</div>\n</section>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgelb dashboard</title>
${links(assets)}
</head>
<body>
<header>
<h1>edgelb</h1>
<p id="connection" role="status">Snapshot from ${esc(data.status.time.slice(0, 19).replace('T', ' '))} UTC<noscript> (JavaScript is off: reload the page for a newer one)</noscript>.</p>
</header>
<main>
${parts}
</main>
</body>
</html>
`;
}

/** The front end's tags; left out when its files are missing, so the page still reads as plain HTML. */
function links(assets: ReadonlyMap<string, Asset>): string {
  const tags: string[] = [];
  if (assets.has('favicon.svg')) tags.push(`<link rel="icon" href="${assetUrl(assets, 'favicon.svg')}" type="image/svg+xml">`);
  if (assets.has('dashboard.css')) tags.push(`<link rel="stylesheet" href="${assetUrl(assets, 'dashboard.css')}">`);
  if (assets.has('dashboard.js')) tags.push(`<script type="module" src="${assetUrl(assets, 'dashboard.js')}"></script>`);
  return tags.join('\n');
}
