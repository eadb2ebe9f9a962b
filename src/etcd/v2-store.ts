import type { EtcdConnection } from './connection.js';
import { EtcdFailure } from './errors.js';
import type { FencedResult, KvFence, KvChange, KvLease, KvListing, KvOp, KvStore, KvWatch, KvWatchHandlers } from './store.js';
import { Backoff } from '../util/backoff.js';
import { V2Lease } from './v2-lease.js';
import { failureOf, indexOf, succeeded, V2_CODES, V2Http, type V2Node, type V2Response } from './v2-http.js';

/**
 * A watch request is re-issued after this long without an event. etcd v2 sends nothing while
 * it waits, so this bounds how long a member that vanished without closing the connection
 * (power loss, partition) can hold the watch. Re-issuing loses nothing: see watchFrom().
 */
const WATCH_REISSUE_MS = 30_000;

/** A poll that failed is re-issued after 50 ms, doubling up to a second while the member stays away. */
const WATCH_RETRY = { firstMs: 50, maxMs: 1000 } as const;

/** The etcd v2 API: the keys a Kontena grid's agents write (etcd 2.3, or etcd 3.x with --enable-v2). */
export class V2Store implements KvStore {
  readonly api = 'v2' as const;
  readonly endpoints: readonly string[];
  readonly http: V2Http;

  constructor(connection: EtcdConnection) {
    this.http = new V2Http(connection);
    this.endpoints = this.http.endpoints;
  }

  async list(prefix: string): Promise<KvListing> {
    // `<prefix>/`, not `<prefix>`: v2 auth checks a recursive read against the key as written,
    // so a role granted `<prefix>/*` may list `<prefix>/` (and nothing of `<prefix>2`). A quorum
    // read: after a failover the member answering may lag behind what was already applied.
    const response = await this.http.keys('GET', `${prefix}/`, { query: { recursive: 'true', quorum: 'true' } });
    if (response.body.errorCode === V2_CODES.keyNotFound) return { entries: new Map(), revision: indexOf(response) };
    if (response.status !== 200) throw failureOf(response, `reading ${prefix}`);
    const entries = new Map<string, string>();
    if (response.body.node) collectLeaves(response.body.node, prefix.length + 1, entries);
    return { entries, revision: indexOf(response) };
  }

  /** Whether `prefix` exists at all (a directory the platform made counts, even empty); undefined when the server has no v2 API. */
  async exists(prefix: string): Promise<boolean | undefined> {
    const response = await this.http.keys('GET', `${prefix}/`, { query: { quorum: 'true' } });
    if (response.body.errorCode === V2_CODES.keyNotFound) return false;
    if (response.status === 200) return true;
    const failure = failureOf(response, `reading ${prefix}`);
    if (failure.code === 'api-unavailable') return undefined;
    throw failure;
  }

  async get(key: string): Promise<string | undefined> {
    const response = await this.http.keys('GET', key, { query: { quorum: 'true' } });
    if (response.body.errorCode === V2_CODES.keyNotFound) return undefined;
    if (response.status !== 200) throw failureOf(response, `reading ${key}`);
    return response.body.node?.dir ? undefined : response.body.node?.value;
  }

  async put(key: string, value: string): Promise<void> {
    await this.write('PUT', key, { form: { value } });
  }

  async delete(key: string): Promise<void> {
    await this.write('DELETE', key, {}, [V2_CODES.keyNotFound]);
  }

  async watch(prefix: string, revision: string, handlers: KvWatchHandlers): Promise<KvWatch> {
    const control = { cancelled: false, abort: new AbortController() };
    void this.watchFrom(prefix, BigInt(revision) + 1n, handlers, control);
    return {
      cancel: async () => {
        control.cancelled = true;
        control.abort.abort();
      },
    };
  }

  lease(ttlSeconds: number): KvLease {
    return new V2Lease(this, ttlSeconds);
  }

  async fencedWrite(fence: KvFence, ops: readonly KvOp[]): Promise<FencedResult> {
    if (!('value' in fence)) throw new EtcdFailure('other', 'the etcd v2 API has no leases to fence a write on');
    if ((await this.get(fence.key)) !== fence.value) return { succeeded: false, revision: '0' };
    let revision = '0';
    for (const op of ops) {
      const response = await this.apply(op, fence);
      if (response === undefined) return { succeeded: false, revision };
      revision = indexOf(response);
    }
    return { succeeded: true, revision };
  }

  close(): void {
    this.http.close();
  }

  /** A write that must succeed; `allowed` error codes count as done (deleting what is gone). */
  async write(
    method: 'PUT' | 'DELETE',
    key: string,
    options: { form?: Record<string, string>; query?: Record<string, string> },
    allowed: number[] = [],
  ): Promise<V2Response> {
    const response = await this.http.keys(method, key, options);
    const code = response.body.errorCode;
    if (code !== undefined ? !allowed.includes(code) : !succeeded(response)) throw failureOf(response, `${method === 'PUT' ? 'writing' : 'deleting'} ${key}`);
    return response;
  }

  /** One fenced op; undefined when its condition failed (a create that found the key). */
  private async apply(op: KvOp, fence: { readonly key: string; readonly value: string }): Promise<V2Response | undefined> {
    switch (op.type) {
      case 'put':
        return this.write('PUT', op.key, { form: { value: op.value } });
      case 'create': {
        const response = await this.http.keys('PUT', op.key, { form: { value: op.value }, query: { prevExist: 'false' } });
        if (response.body.errorCode === V2_CODES.nodeExists) return undefined;
        if (!succeeded(response)) throw failureOf(response, `creating ${op.key}`);
        return response;
      }
      case 'delete':
        // Deleting the fence key itself is a compare-and-delete: atomic even on v2.
        return this.write('DELETE', op.key, op.key === fence.key ? { query: { prevValue: fence.value } } : {}, [V2_CODES.keyNotFound]);
      case 'delete-prefix':
        return this.write('DELETE', op.key.replace(/\/+$/, ''), { query: { recursive: 'true' } }, [V2_CODES.keyNotFound]);
    }
  }

  /**
   * Long-polls `prefix` from `waitIndex`, one event per answer. When a poll is re-issued without
   * an event (the connection dropped, or WATCH_REISSUE_MS passed), it resumes from the index
   * the last poll's headers carried: etcd answers a watch at once with the first matching event
   * at or after waitIndex, so no event below that index was missed. The history etcd keeps is
   * the last 1000 events of the whole store; an index older than that ends the watch
   * ('history-lost') and the caller reads everything again.
   */
  private async watchFrom(
    prefix: string,
    waitIndex: bigint,
    handlers: KvWatchHandlers,
    control: { cancelled: boolean; abort: AbortController },
  ): Promise<void> {
    let next = waitIndex;
    let connected = false;
    const retry = new Backoff(WATCH_RETRY);
    while (!control.cancelled) {
      const poll = new AbortController();
      const stop = () => poll.abort();
      control.abort.signal.addEventListener('abort', stop, { once: true });
      const reissue = setTimeout(stop, WATCH_REISSUE_MS);
      let started: bigint | undefined;
      let lostBehind: bigint | undefined;
      try {
        const response = await this.http.keys('GET', `${prefix}/`, {
          query: { wait: 'true', recursive: 'true', waitIndex: next.toString() },
          signal: poll.signal,
          timeoutMs: 0,
          onHeaders: (index) => {
            started = index === undefined ? undefined : BigInt(index);
            // A cluster rebuilt empty or restored from an old backup has gone back in index:
            // waiting for the next index would wait for something else there. Read everything again.
            if (started !== undefined && started + 1n < next) {
              poll.abort();
              lostBehind = started;
              return;
            }
            if (!connected) handlers.onConnected?.();
            connected = true;
            retry.reset();
          },
        });
        if (control.cancelled) return;
        const node = response.body.node;
        if (response.status !== 200 || node === undefined) {
          handlers.onLost(failureOf(response, `watching ${prefix}`));
          return;
        }
        next = BigInt(node.modifiedIndex) + 1n;
        const event = eventOf(response.body.action ?? '', node, prefix);
        if (event !== 'outside') handlers.onChanges(event === 'nothing' ? [] : [event], String(node.modifiedIndex));
      } catch (error) {
        if (control.cancelled) return;
        if (lostBehind !== undefined) {
          handlers.onLost(new EtcdFailure('history-lost', `etcd is at index ${lostBehind}, behind the ${next - 1n} already seen (a new or restored cluster)`));
          return;
        }
        // Only a poll this loop gave up on itself waited out everything below its start index; a
        // connection that broke may have lost an event etcd found in its history and was sending.
        if (poll.signal.aborted && started !== undefined && started + 1n > next) next = started + 1n;
        if (!poll.signal.aborted) {
          const failure = error instanceof EtcdFailure ? error : new EtcdFailure('unreachable', (error as Error).message, { cause: error });
          if (failure.code === 'tls' || failure.code === 'auth') {
            handlers.onLost(failure);
            return;
          }
          const retryMs = retry.next();
          if (connected || retryMs === WATCH_RETRY.firstMs) handlers.onInterrupted?.(failure);
          connected = false;
          await new Promise((resolve) => setTimeout(resolve, retryMs));
        }
      } finally {
        clearTimeout(reissue);
        control.abort.signal.removeEventListener('abort', stop);
      }
    }
  }
}

/** Every value below `node`, keyed relative to the prefix (`start` = its length + 1). Empty directories add nothing. */
function collectLeaves(node: V2Node, start: number, into: Map<string, string>): void {
  if (node.dir) {
    for (const child of node.nodes ?? []) collectLeaves(child, start, into);
  } else if (node.value !== undefined && node.key.length > start) {
    into.set(node.key.slice(start), node.value);
  }
}

/**
 * A watch event as a change. etcd v2 hands a recursive watch on `/a/lb-internal/` the delete of
 * directory `/a/lb` too (its history matches a deleted directory by string prefix), so an event
 * must be under the prefix, or the prefix itself or one of its parents going away (everything
 * goes); anything else is 'outside'. A directory made, or a TTL refresh, changes no entry: 'nothing'.
 */
export function eventOf(action: string, node: V2Node, prefix: string): KvChange | 'nothing' | 'outside' {
  const removal = action === 'delete' || action === 'expire' || action === 'compareAndDelete';
  if (node.key === prefix || prefix.startsWith(`${node.key.replace(/\/+$/, '')}/`)) {
    return removal ? { type: 'delete', key: '', dir: true } : 'nothing';
  }
  if (!node.key.startsWith(`${prefix}/`)) return 'outside';
  const key = node.key.slice(prefix.length + 1);
  if (removal) return node.dir ? { type: 'delete', key, dir: true } : { type: 'delete', key };
  if (action === 'set' || action === 'create' || action === 'update' || action === 'compareAndSwap') {
    return node.dir || node.value === undefined ? 'nothing' : { type: 'put', key, value: node.value };
  }
  return 'nothing';
}
