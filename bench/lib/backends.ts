import { nextMessage, startTsWorker } from './ts-worker.js';

/** Plain HTTP backends on loopback, served from one worker thread (backends-worker.ts). */
export interface Backend {
  readonly name: string;
  readonly port: number;
  /** host:port, as an upstream entry in etcd. */
  readonly address: string;
}

export interface Backends {
  readonly list: readonly Backend[];
  byName(name: string): Backend;
  /** Requests each backend has served so far. */
  counts(): Promise<Record<string, number>>;
  close(): Promise<void>;
}

export type BackendsMessage = { readonly type: 'counts' | 'close' };

const isType =
  <T extends string, M>(type: T) =>
  (m: unknown): m is { type: T } & M =>
    typeof m === 'object' && m !== null && (m as { type?: unknown }).type === type;

export async function startBackends(names: readonly string[]): Promise<Backends> {
  const worker = startTsWorker(new URL('./backends-worker.ts', import.meta.url), names);
  let ready: { ports: number[] };
  try {
    ready = await nextMessage(worker, isType<'ready', { ports: number[] }>('ready'));
  } catch (error) {
    await worker.terminate();
    throw error;
  }
  const list = names.map((name, i) => ({ name, port: ready.ports[i]!, address: `127.0.0.1:${ready.ports[i]!}` }));
  let closed = false;
  return {
    list,
    byName(name) {
      const backend = list.find((b) => b.name === name);
      if (!backend) throw new Error(`no backend named ${name}`);
      return backend;
    },
    async counts() {
      const answer = nextMessage(worker, isType<'counts', { counts: Record<string, number> }>('counts'));
      worker.postMessage({ type: 'counts' } satisfies BackendsMessage);
      return (await answer).counts;
    },
    async close() {
      if (closed) return;
      closed = true;
      const answer = nextMessage(worker, isType('closed'), 10_000).catch(() => undefined);
      worker.postMessage({ type: 'close' } satisfies BackendsMessage);
      await answer;
      await worker.terminate();
    },
  };
}
