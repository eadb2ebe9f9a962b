import { changedServices } from '../model/state-changes.js';
import type { RenderedConfig } from './render.js';
import { httpBackendName, tcpProxyName } from './view.js';

/** One service's section in two configs; undefined where a config does not have it. */
export interface SectionChange {
  /** The service, as `http:web` / `tcp:db`. */
  readonly service: string;
  /** The proxy name (`http-web`, `tcp-db`). */
  readonly proxy: string;
  readonly before: string | undefined;
  readonly after: string | undefined;
}

/** How one rendered config differs from another, section by section. */
export interface ConfigChange {
  readonly headBefore: string;
  readonly headAfter: string;
  /** Rendered with other settings: every section may differ. */
  readonly settingsChanged: boolean;
  /** Only the sections whose text differs. */
  readonly sections: readonly SectionChange[];
}

/**
 * The sections that differ between two renders, found from the services whose objects differ
 * (changedServices: what the incremental parse recorded, else one identity comparison per
 * service), never by comparing the whole texts.
 */
export function diffConfigs(before: RenderedConfig, after: RenderedConfig): ConfigChange {
  const change = { headBefore: before.head, headAfter: after.head };
  if (before.settingsKey !== after.settingsKey) {
    // Rare (certificates served or not): compare the texts, so equal output is not a reload.
    return { ...change, settingsChanged: before.text !== after.text, sections: [] };
  }
  const sections: SectionChange[] = [];
  for (const key of before === after ? [] : changedServices(before.state, after.state)) {
    const old = before.sectionOf(key);
    const now = after.sectionOf(key);
    if (old !== now) sections.push({ service: key, proxy: proxyName(key), before: old, after: now });
  }
  return { ...change, settingsChanged: false, sections };
}

/** Whether two renders give the very same config text. */
export function isSameConfig(change: ConfigChange): boolean {
  return !change.settingsChanged && change.headBefore === change.headAfter && change.sections.length === 0;
}

function proxyName(serviceKey: string): string {
  const colon = serviceKey.indexOf(':');
  const name = serviceKey.slice(colon + 1);
  return serviceKey.startsWith('tcp:') ? tcpProxyName(name) : httpBackendName(name);
}
