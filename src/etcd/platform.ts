import type { PlatformFacts } from '../config.js';

/** Files that mark a container: Docker (Kontena's engine) writes /.dockerenv, Podman /run/.containerenv. */
export const CONTAINER_MARKERS = ['/.dockerenv', '/run/.containerenv'] as const;
export const ROUTE_TABLE = '/proc/net/route';

/**
 * Where edgelb runs, from what main.ts reads: inside a container (a marker file, or the
 * `container` variable systemd-nspawn and Podman set) and the default route's gateway.
 */
export function platformFacts(read: {
  readonly exists: (path: string) => boolean;
  readonly readFile: (path: string) => string | undefined;
  readonly env: Readonly<Record<string, string | undefined>>;
}): PlatformFacts {
  const inContainer = CONTAINER_MARKERS.some((marker) => read.exists(marker)) || Boolean(read.env.container);
  const routes = inContainer ? read.readFile(ROUTE_TABLE) : undefined;
  return { inContainer, defaultGateway: routes === undefined ? undefined : defaultGatewayOf(routes) };
}

/**
 * The IPv4 gateway of the default route in /proc/net/route: the row whose destination and mask
 * are 0 and whose flags have RTF_GATEWAY (0x2); addresses are hex in the kernel's (little-endian) order.
 */
export function defaultGatewayOf(table: string): string | undefined {
  for (const line of table.split('\n').slice(1)) {
    const [, destination, gateway, flags, , , , mask] = line.trim().split(/\s+/);
    if (destination !== '00000000' || mask !== '00000000' || gateway === undefined || !/^[0-9A-Fa-f]{8}$/.test(gateway)) continue;
    if ((Number.parseInt(flags ?? '0', 16) & 0x2) === 0) continue;
    const bytes = gateway
      .match(/../g)!
      .map((hex) => Number.parseInt(hex, 16))
      .reverse();
    return bytes.join('.');
  }
  return undefined;
}
