import http from 'node:http';

/**
 * A small, bounded load generator for the fault-injection tests: a few clients that each send
 * one request after another through the load balancer, some over one kept-alive connection,
 * some on a new connection every time. Every request is recorded as ok or failed, with the
 * time, so a test can say how many failed, when, and how long an outage lasted.
 */

export interface LoadOptions {
  readonly port: number;
  readonly host: string;
  readonly path?: string;
  readonly keepAliveClients?: number;
  readonly newConnectionClients?: number;
  /** What counts as a good answer; by default any 200. */
  readonly ok?: (status: number, body: string) => boolean;
  readonly timeoutMs?: number;
  /** Safety bound: the load stops by itself after this long. */
  readonly maxDurationMs?: number;
}

export type ClientKind = 'keepalive' | 'new';

export interface Outcome {
  readonly at: number;
  readonly kind: ClientKind;
  readonly ok: boolean;
  /** For failures: the status and the start of the body, or the connection error. */
  readonly detail?: string;
}

export interface LoadSummary {
  readonly requests: number;
  readonly failed: number;
  readonly connectionErrors: number;
  readonly badAnswers: number;
  readonly byKind: Readonly<Record<ClientKind, { requests: number; failed: number }>>;
  /** The first few failures, for the assertion message. */
  readonly examples: readonly string[];
}

export interface Load {
  /** Every request so far, oldest first. */
  readonly outcomes: readonly Outcome[];
  summary(from?: number, to?: number): LoadSummary;
  /** Resolves once `count` requests have succeeded after time `since`. */
  succeededSince(since: number, count?: number, timeoutMs?: number): Promise<number>;
  stop(): Promise<LoadSummary>;
}

export function startLoad(options: LoadOptions): Load {
  const outcomes: Outcome[] = [];
  const deadline = Date.now() + (options.maxDurationMs ?? 120_000);
  let stopped = false;
  const isOk = options.ok ?? ((status) => status === 200);

  const client = async (kind: ClientKind) => {
    const agent = new http.Agent({ keepAlive: kind === 'keepalive', maxSockets: 1 });
    while (!stopped && Date.now() < deadline) {
      const outcome = await once(options, agent).then(
        ({ status, body }) => (isOk(status, body) ? { ok: true } : { ok: false, detail: `${status} ${describe(body)}` }),
        (error: NodeJS.ErrnoException) => ({ ok: false, detail: error.code ?? error.message, connection: true }),
      );
      outcomes.push({ at: Date.now(), kind, ...outcome });
      // While nothing answers, do not spin: a refused connection returns in microseconds.
      if (!outcome.ok) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    agent.destroy();
  };
  const clients = [
    ...Array.from({ length: options.keepAliveClients ?? 2 }, () => client('keepalive')),
    ...Array.from({ length: options.newConnectionClients ?? 2 }, () => client('new')),
  ];

  const summary = (from = 0, to = Infinity): LoadSummary => {
    const window = outcomes.filter((o) => o.at >= from && o.at <= to);
    const failed = window.filter((o) => !o.ok);
    const kinds = (kind: ClientKind) => ({
      requests: window.filter((o) => o.kind === kind).length,
      failed: failed.filter((o) => o.kind === kind).length,
    });
    return {
      requests: window.length,
      failed: failed.length,
      connectionErrors: failed.filter((o) => o.detail !== undefined && !/^\d{3} /.test(o.detail)).length,
      badAnswers: failed.filter((o) => o.detail !== undefined && /^\d{3} /.test(o.detail)).length,
      byKind: { keepalive: kinds('keepalive'), new: kinds('new') },
      examples: failed.slice(0, 5).map((o) => `${o.kind}@${o.at}: ${o.detail}`),
    };
  };

  return {
    outcomes,
    summary,
    async succeededSince(since, count = 4, timeoutMs = 15_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const good = outcomes.filter((o) => o.at >= since && o.ok);
        if (good.length >= count) return good[0]!.at;
        if (Date.now() > until) throw new Error(`fewer than ${count} good answers within ${timeoutMs} ms; last: ${JSON.stringify(outcomes.at(-1))}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    async stop() {
      stopped = true;
      await Promise.all(clients);
      return summary();
    },
  };
}

/** The load balancer's own pages by what they say; anything else by its first characters. */
function describe(body: string): string {
  if (body.includes('No service for this address')) return 'no-route page';
  if (body.includes('Service unavailable')) return 'service-unavailable page';
  return body.slice(0, 60).replace(/\s+/g, ' ');
}

function once(options: LoadOptions, agent: http.Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: options.port, path: options.path ?? '/', headers: { host: options.host }, agent, timeout: options.timeoutMs ?? 5000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end();
  });
}

/** One parseable line per fault for the lead to quote: `FAULT name=... failed=... recoveryMs=...`. */
export function reportFault(name: string, figures: Record<string, number | string | undefined>): void {
  const fields = Object.entries(figures)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${v}`);
  console.log(`FAULT name=${name} ${fields.join(' ')}`);
}
