import { createHash, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import { isIP } from 'node:net';

/** Who may see the dashboard: a decision per request, from the bind and KONTENA_LB_ADMIN_PASSWORD. */
export type DashboardAccess = 'allowed' | 'needs-credentials' | 'forbidden';

export const DASHBOARD_USER = 'admin';

/** 127.0.0.0/8, ::1, localhost: only processes on this machine can connect. */
export function isLoopbackBind(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

/**
 * The dashboard names every backend; on an address others can reach it needs a password. Without
 * one there it is refused rather than served open, but only the dashboard: /healthz, /status and
 * /metrics keep answering as they did before the dashboard existed (probes, Prometheus,
 * `edgelb status` would otherwise break on upgrade).
 */
export function dashboardAccess(req: http.IncomingMessage, bind: string, password: string | undefined): DashboardAccess {
  // Open on loopback only to a browser that asked for a loopback name: a page elsewhere that points
  // its own host name at 127.0.0.1 (DNS rebinding) sends that name, and is refused.
  if (password === undefined) return isLoopbackBind(bind) && isLoopbackHost(req.headers.host) ? 'allowed' : 'forbidden';
  return credentialsMatch(req.headers.authorization, password) ? 'allowed' : 'needs-credentials';
}

/** A Host header naming this machine: localhost, 127.x.y.z or [::1], with or without a port. */
function isLoopbackHost(host: string | undefined): boolean {
  const name = (host ?? '')
    .replace(/:\d+$/, '')
    .replace(/^\[(.*)\]$/, '$1')
    .toLowerCase();
  return name === 'localhost' || name === '::1' || (isIP(name) === 4 && name.startsWith('127.'));
}

/** Compares digests, so neither the length nor the first differing byte shows in the timing. */
function credentialsMatch(header: string | undefined, password: string): boolean {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!match?.[1]) return false;
  const given = Buffer.from(match[1], 'base64').toString('utf8');
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(given), digest(`${DASHBOARD_USER}:${password}`));
}
