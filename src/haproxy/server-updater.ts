import type { Logger } from '../log.js';
import type { HealthCheck } from '../model/health-check.js';
import { ipAddressOf, type ConfigServer } from '../render/servers.js';
import type { ProbeCheck } from './health-probe.js';
import { accepted, RuntimeApiError, type HaproxyRuntime } from './runtime.js';
import { refusalIn, SERVER_GONE } from './runtime-answers.js';
import type { ServerSpec, ServerPlan } from '../plan/server-plan.js';
import type { ServerProver } from './server-prover.js';
import { CommandBatch } from './command-batch.js';

/** The check of the service a proxy belongs to (undefined: unknown, HAProxy's checks decide). */
export type CheckOf = (proxy: string) => HealthCheck | undefined;

const DRAIN_POLL_MS = 250;

/**
 * Applies a ServerPlan through the runtime API of the running worker: instances come and go
 * without a reload. A new server gets no traffic before its first passing health check: the
 * controller's own probe (the prover), or HAProxy's checks when the probe cannot tell. A moved
 * server keeps serving at its old address until the new one has passed the probe. A removed one
 * is drained (maintenance: no new requests, in-flight ones finish) and deleted once idle, or
 * after `drainTimeoutMs` by closing what is left.
 */
export class ServerUpdater {
  private readonly draining = new Map<string, { line: ServerSpec; deadline: number; shutdown: boolean }>();
  /** Servers proven healthy go into service together: one connection for all proven in one turn. */
  private readonly proofs: CommandBatch;
  /** Servers with a move waiting for its proof (see pendingMoves). */
  private readonly moving = new Map<string, { readonly tag: string; weight: number }>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly runtime: HaproxyRuntime,
    private readonly logger: Logger,
    private readonly drainTimeoutMs: number,
    private readonly prover?: ServerProver,
  ) {
    this.proofs = new CommandBatch(
      (line) => this.runtime.raw(line),
      (answer) => refusalIn(answer) !== undefined,
    );
  }

  /** Throws on the first command HAProxy refuses; the caller then reloads, which resets every server. */
  async apply(plan: ServerPlan, checkOf: CheckOf = () => undefined): Promise<number> {
    let commands = 0;
    for (const line of plan.remove) {
      this.prover?.cancel(id(line));
      await this.run(`set server ${id(line)} state maint`);
      this.draining.set(id(line), { line, deadline: Date.now() + this.drainTimeoutMs, shutdown: false });
      commands++;
    }
    for (const line of plan.add) {
      const draining = this.draining.get(id(line));
      if (draining && draining.line.args === line.args) {
        // Back before its drain ended: the same server returns to service, checked like a new one.
        await this.run(this.readdressCommands(line, true));
        this.draining.delete(id(line));
        this.proveNew(line, checkOf(line.proxy));
        commands++;
        continue;
      }
      if (draining) await this.deleteNow(line);
      // Every server line is health-checked (templates/server-check.hbs). Weight 0 until the
      // health state is forced down, so not one request reaches an unchecked server.
      await this.run(
        [
          `add server ${id(line)} ${line.address} ${line.args}`.trimEnd(),
          `set server ${id(line)} weight 0`,
          `enable server ${id(line)}`,
          `set server ${id(line)} health down`,
          `enable health ${id(line)}`,
          `set server ${id(line)} weight 100%`,
        ].join('; '),
      );
      this.proveNew(line, checkOf(line.proxy));
      commands++;
    }
    for (const line of plan.readdress) {
      const check = probeable(checkOf(line.proxy));
      if (check && this.prover) {
        // No command yet: the server keeps its old address (and its traffic) until the new one is proven.
        const server = id(line);
        const tag = tagOf(server, line, check);
        // The weight the move ends with: a reweight while it waits changes it (apply, plan.reweight).
        const move = { tag, weight: line.weight };
        // Only this move: a newer one for the same server may have started meanwhile.
        const moved = () => void (this.moving.get(server) === move && this.moving.delete(server));
        this.prover.prove({
          id: server,
          target: line,
          check,
          retry: true,
          onProven: () =>
            this.proofs
              .run(`set server ${server} addr ${line.host} port ${line.port}; set server ${server} weight ${move.weight}; set server ${server} health up`, tag)
              .finally(moved),
          // Never proven: the address etcd gives is the instance's now; HAProxy's checks decide.
          onGaveUp: () => this.proofs.run(this.readdressCommands({ ...line, weight: move.weight }, false), tag).finally(moved),
          onCancel: moved,
        });
        // After prove(): replacing an older request for this server cancels it, which un-marks it.
        this.moving.set(server, move);
        continue;
      }
      await this.run(this.readdressCommands(line, false));
      commands++;
    }
    for (const line of plan.reweight) {
      // Only the weight changed (weights/<instance>): new requests follow it at once, connections
      // are kept (management guide 9.3, "set server <b>/<s> weight"; 0 takes no new requests).
      await this.run(`set server ${id(line)} weight ${line.weight}`);
      const move = this.moving.get(id(line));
      if (move) move.weight = line.weight;
      commands++;
    }
    this.scheduleDrain();
    return commands;
  }

  /**
   * Servers a start or a reload brought up DOWN (no state to carry): each is put in service once
   * the probe passes. `retry`: keep trying through the window (servers new with this config), or
   * one attempt (a start, when the instances have been running all along).
   */
  proveStarted(servers: readonly ConfigServer[], retry: boolean): void {
    for (const server of servers) this.prove(`${server.proxy}/${server.name}`, server, server.check, retry);
  }

  private proveNew(line: ServerSpec, check: HealthCheck | undefined): void {
    this.prove(id(line), line, check, true);
  }

  private prove(server: string, target: { host: string; port: number }, check: HealthCheck | undefined, retry: boolean): void {
    const probe = probeable(check);
    if (!probe || !this.prover) return;
    this.prover.prove({
      id: server,
      target: { host: target.host, port: target.port },
      check: probe,
      retry,
      onProven: () => this.proofs.run(`set server ${server} health up`, tagOf(server, target, probe)),
    });
  }

  /**
   * Servers whose move to a new address waits for its proof, and which `next` (the config being
   * committed) still has at that address with that check: the running worker has them at their
   * old address, serving. A reload carries them as they are, and the move finishes in the new
   * worker (endCommit keeps exactly these), so it opens no gap there either.
   */
  pendingMoves(next: readonly ConfigServer[]): ReadonlySet<string> {
    const tags = tagsOf(next);
    return new Set([...this.moving].filter(([, move]) => tags.has(move.tag)).map(([server]) => server));
  }

  /**
   * A start or reload is under way: results of first probes wait, since the admin socket may
   * belong to the next worker before they are sent, and that worker's states come from the file.
   * Resolves once no line is on its way to the running worker any more.
   */
  beginCommit(): Promise<void> {
    return this.proofs.hold();
  }

  /**
   * The new worker (`next`: its servers) runs, or the commit failed (undefined: the old one
   * still serves). Probes and held results for a server the next worker no longer has as they
   * were made for (another address, another check, gone) are dropped; the rest apply to it.
   */
  endCommit(next: readonly ConfigServer[] | undefined): void {
    if (next === undefined) {
      this.proofs.release();
      return;
    }
    const known = tagsOf(next);
    this.prover?.retain((r) => known.has(tagOf(r.id, r.target, r.check)));
    this.proofs.release((tag) => tag === undefined || known.has(tag));
  }

  /** A new address (and, for a drained server, service again), with no traffic before its checks pass. */
  private readdressCommands(line: ServerSpec, fromMaintenance: boolean): string {
    return [
      `set server ${id(line)} weight 0`,
      `set server ${id(line)} addr ${line.host} port ${line.port}`,
      ...(fromMaintenance ? [`set server ${id(line)} state ready`] : []),
      `set server ${id(line)} health down`,
      // The line's weight, not `100%` (the weight the server was loaded or added with): the
      // weight may have been changed at runtime since.
      `set server ${id(line)} weight ${line.weight}`,
    ].join('; ');
  }

  /**
   * After a reload the new worker has none of the draining servers; the old worker finishes them.
   * Pending probes stay: a server still waiting for its proof is DOWN in the new worker too.
   */
  forget(): void {
    this.draining.clear();
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  stop(): void {
    this.stopped = true;
    this.prover?.stop();
    this.forget();
  }

  private async run(command: string): Promise<string> {
    return accepted(command, await this.runtime.raw(command));
  }

  /** A removed instance came back under the same name before its drain ended. */
  private async deleteNow(line: ServerSpec): Promise<void> {
    const answer = await this.runtime.raw(`del server ${id(line)}`);
    if (!SERVER_GONE.test(answer)) {
      throw new RuntimeApiError(`server ${id(line)} is still draining: ${answer.trim()}`);
    }
    this.draining.delete(id(line));
  }

  private scheduleDrain(): void {
    if (this.timer || this.stopped || this.draining.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.drainOnce()
        .catch((error: Error) => this.logger.debug({ err: error.message }, 'drain attempt failed; retrying'))
        .finally(() => this.scheduleDrain());
    }, DRAIN_POLL_MS).unref();
  }

  private async drainOnce(): Promise<void> {
    for (const [key, entry] of [...this.draining]) {
      // forget() (a reload) may have come in between: the socket may belong to a new worker by now.
      if (this.draining.get(key) !== entry) continue;
      const answer = await this.runtime.raw(`del server ${key}`);
      if (SERVER_GONE.test(answer)) {
        if (this.draining.get(key) === entry) this.draining.delete(key);
        this.logger.debug({ server: key }, 'drained server deleted');
      } else if (Date.now() >= entry.deadline && !entry.shutdown) {
        entry.shutdown = true;
        this.logger.warn({ server: key, drainTimeoutMs: this.drainTimeoutMs }, 'removed server still busy after the drain timeout: closing its connections');
        await this.runtime.raw(`shutdown sessions server ${key}`);
      }
    }
  }
}

/** A server at an address with a check: what a probe's result is about. */
function tagOf(server: string, target: { host: string; port: number }, check: ProbeCheck | undefined): string {
  return `${server}@${ipAddressOf(target.host) ?? target.host}:${target.port}#${JSON.stringify(check ?? null)}`;
}

function tagsOf(servers: readonly ConfigServer[]): Set<string> {
  return new Set(servers.map((s) => tagOf(`${s.proxy}/${s.name}`, s, probeable(s.check))));
}

function probeable(check: HealthCheck | undefined): ProbeCheck | undefined {
  return check === undefined || check.kind === 'haproxy-only' ? undefined : check;
}

function id(line: ServerSpec): string {
  return `${line.proxy}/${line.name}`;
}
