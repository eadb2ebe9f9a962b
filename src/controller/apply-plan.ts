import { sameChallenges, type Challenges } from '../model/challenges.js';
import { peersChange } from '../model/peers.js';
import type { DesiredState } from '../model/types.js';
import { EMPTY_SERVER_PLAN, isEmptyPlan, planServers, type ServerArgs, type ServerPlan } from '../plan/server-plan.js';
import type { RenderedConfig } from '../render/render.js';
import { canarySharesOf } from '../render/routing-view.js';
import { sameServed, type CertSet } from '../tls/store.js';

/** What was last applied: the state (services HAProxy rejected left out), certificates and tokens. */
export interface Applied {
  readonly revision: string;
  readonly state: DesiredState;
  readonly certs: CertSet;
  readonly challenges: Challenges;
}

/** How to get from what HAProxy serves to the desired config. */
export type ApplyPlan =
  | { readonly kind: 'unchanged' }
  | {
      readonly kind: 'runtime';
      readonly servers: ServerPlan;
      readonly certs: boolean;
      readonly challenges: boolean;
      /** Canary shares changed (only their percentages: a route change reloads): `set map`. */
      readonly canaries: boolean;
    }
  | { readonly kind: 'reload'; readonly reason: string };

export interface ApplyPlanInput {
  readonly applied: Applied | undefined;
  /** The config text HAProxy serves (undefined: HAProxy is not running). */
  readonly serving: { readonly text: string } | undefined;
  /** The config this controller rendered and applied last, if HAProxy serves it. */
  readonly ours: RenderedConfig | undefined;
  readonly rendered: RenderedConfig;
  readonly state: DesiredState;
  readonly certs: CertSet;
  readonly challenges: Challenges;
  /** A server's arguments for `add server`. */
  readonly serverArgs: ServerArgs;
  /** Whether instances may change through the runtime API; false: any instance change reloads. */
  readonly runtimeServers: boolean;
}

/**
 * The typed plan of one apply. Pure. When HAProxy serves the config this controller rendered
 * (the usual case) the states are compared as data (planServers); otherwise (just started from
 * the last good file, or other settings) the texts are compared, once. Certificates and
 * challenge tokens always change through the runtime API.
 */
export function planApply(input: ApplyPlanInput): ApplyPlan {
  const { applied, serving, ours, rendered } = input;
  if (!applied || serving === undefined) return { kind: 'reload', reason: 'nothing applied yet' };
  let servers = EMPTY_SERVER_PLAN;
  if (ours !== undefined && serving === ours && ours.settingsKey === rendered.settingsKey) {
    if (applied.state !== input.state) {
      const decision = planServers(applied.state, input.state, input.serverArgs, rendered.settings.defaultsSettings);
      if ('reloadBecause' in decision) return { kind: 'reload', reason: decision.reloadBecause };
      servers = decision.plan;
      if (!isEmptyPlan(servers) && !input.runtimeServers) return { kind: 'reload', reason: 'instances changed and runtime server updates are off' };
    }
  } else if (rendered.text !== serving.text) {
    if (ours === undefined || serving !== ours) return { kind: 'reload', reason: 'HAProxy serves a config from an earlier run' };
    // HAProxy 2.6 cannot add or remove a peer at runtime: a replica that came or went is a reload.
    return { kind: 'reload', reason: peersChange(ours.settings.peers?.members, rendered.settings.peers?.members) ?? 'settings changed' };
  }
  const certs = !sameServed(applied.certs, input.certs);
  const challenges = !sameChallenges(applied.challenges, input.challenges);
  const canaries = applied.state !== input.state && !sameChallenges(canarySharesOf(applied.state), canarySharesOf(input.state));
  if (isEmptyPlan(servers) && !certs && !challenges && !canaries) return { kind: 'unchanged' };
  return { kind: 'runtime', servers, certs, challenges, canaries };
}
