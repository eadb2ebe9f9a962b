import type { CertFiles } from '../haproxy/cert-files.js';
import type { ChallengeMap } from '../haproxy/challenge-map.js';
import type { CheckOf, ServerUpdater } from '../haproxy/server-updater.js';
import type { Challenges } from '../model/challenges.js';
import { isEmptyPlan, type ServerPlan, type ServerSpec } from '../plan/server-plan.js';
import type { CertSet } from '../tls/store.js';
import type { ApplyPlan, Applied } from './apply-plan.js';

export type RuntimePlan = Extract<ApplyPlan, { kind: 'runtime' }>;

export interface RuntimeTargets {
  readonly servers: ServerUpdater | undefined;
  readonly certFiles: CertFiles;
  readonly challengeMap: ChallengeMap;
  /** The canary shares' map (service → percent): the same kind of map file as the challenges'. */
  readonly canaryMap: ChallengeMap;
  /** The health check of each proxy's servers in the config HAProxy serves. */
  readonly checkOf: CheckOf;
}

/**
 * Carries out a runtime plan: servers, then certificates (files first, so a reload later finds
 * them), then challenge tokens. Throws on the first thing HAProxy refuses; the caller then
 * reloads, which puts every server, certificate and token back in line with the files.
 */
export async function applyAtRuntime(
  plan: RuntimePlan,
  before: Applied,
  certs: CertSet,
  challenges: Challenges,
  targets: RuntimeTargets,
  canaries: { readonly before: ReadonlyMap<string, string>; readonly after: ReadonlyMap<string, string> } = { before: new Map(), after: new Map() },
): Promise<{ operations: number; details: Record<string, unknown> }> {
  const { servers, certFiles, challengeMap } = targets;
  let operations = 0;
  if (!isEmptyPlan(plan.servers)) operations += await servers!.apply(plan.servers, targets.checkOf);
  if (plan.certs) {
    await certFiles.write(certs);
    operations += await certFiles.applyRuntime(before.certs, certs);
    await certFiles.prune(certs);
  }
  if (plan.challenges) {
    await challengeMap.write(challenges);
    operations += await challengeMap.applyRuntime(before.challenges, challenges);
  }
  if (plan.canaries) {
    await targets.canaryMap.write(canaries.after);
    operations += await targets.canaryMap.applyRuntime(canaries.before, canaries.after);
  }
  const details = {
    operations,
    ...serverNames(plan.servers),
    ...(plan.certs ? { certificates: certs.served.length } : {}),
    ...(plan.challenges ? { challenges: challenges.size } : {}),
    ...(plan.canaries ? { canaries: Object.fromEntries(canaries.after) } : {}),
  };
  return { operations, details };
}

/** The services whose instances a plan changes, as `http:web` / `tcp:db`. */
export function servicesIn(plan: ServerPlan): string[] {
  return [...new Set([...plan.add, ...plan.remove, ...plan.readdress, ...plan.reweight].map((s) => s.service))].sort();
}

function serverNames(plan: ServerPlan): Record<string, string[]> {
  const names = (specs: readonly ServerSpec[]) => specs.map((s) => `${s.proxy}/${s.name}`);
  return Object.fromEntries(
    (
      [
        ['serversAdded', plan.add],
        ['serversRemoved', plan.remove],
        ['serversReaddressed', plan.readdress],
        ['serversReweighted', plan.reweight],
      ] as const
    )
      .filter(([, specs]) => specs.length > 0)
      .map(([key, specs]) => [key, names(specs)]),
  );
}
