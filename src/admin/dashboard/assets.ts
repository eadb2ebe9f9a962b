import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../util/package-root.js';

export interface Asset {
  readonly name: string;
  readonly type: string;
  readonly body: Buffer;
  /** A short content hash: the page links `name?v=<hash>`, so a cached copy is never stale. */
  readonly hash: string;
}

const TYPES: Readonly<Record<string, string>> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** The front end's files, served as they are in the repo (no build step). */
export const ASSET_NAMES = ['dashboard.js', 'dashboard.css', 'favicon.svg'] as const;
export type AssetName = (typeof ASSET_NAMES)[number];

/**
 * Read from the package root rather than next to this module: tsc copies no static files into
 * dist/, so the running build finds them where the templates are found too (util/package-root.ts).
 */
export function loadAssets(root = packageRoot()): ReadonlyMap<string, Asset> {
  const dir = path.join(root, 'src', 'admin', 'dashboard', 'public');
  return new Map(
    ASSET_NAMES.map((name) => {
      const body = readFileSync(path.join(dir, name));
      const type = TYPES[path.extname(name)] ?? 'application/octet-stream';
      return [name, { name, type, body, hash: createHash('sha256').update(body).digest('hex').slice(0, 12) }];
    }),
  );
}

/** An asset's URL with its hash, for the page's links. */
export function assetUrl(assets: ReadonlyMap<string, Asset>, name: AssetName): string {
  return `/dashboard/${name}?v=${assets.get(name)?.hash ?? ''}`;
}

/**
 * A hashed URL is immutable (a new file gets a new hash); any other request of the file must
 * revalidate, so an old page never pairs with a new script for long.
 */
export function assetHeaders(asset: Asset, requestedHash: string | null): Record<string, string> {
  const cache = requestedHash === asset.hash ? 'public, max-age=31536000, immutable' : 'no-cache';
  return {
    'Content-Type': asset.type,
    'Content-Length': String(asset.body.length),
    'Cache-Control': cache,
    ETag: `"${asset.hash}"`,
    'X-Content-Type-Options': 'nosniff',
  };
}
