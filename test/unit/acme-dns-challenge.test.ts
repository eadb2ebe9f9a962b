import { describe, expect, it } from 'vitest';
import { publishDnsRecord, type DnsSolver } from '../../src/acme/dns-challenge.js';
import type { DnsPublisher } from '../../src/acme/dns-publisher.js';
import { Interrupted, interrupted } from '../../src/acme/interruption.js';
import type { AcmeStorage } from '../../src/acme/storage.js';
import { capturingLogger } from '../support/log-capture.js';

describe('publishDnsRecord', () => {
  it('interrupted while the record is being published: gives up only once the publisher is done, so the cleanup after it removes the record', async () => {
    let finish: (() => void) | undefined;
    const publisher: DnsPublisher = {
      describe: 'a publisher in flight',
      present: () => new Promise<void>((resolve) => (finish = resolve)),
      cleanup: async () => undefined,
    };
    const solver: DnsSolver = { publisher, propagation: { timeoutMs: 1000, pollMs: 100, queryTimeoutMs: 100 } };
    const storage = { states: new Map(), statePut: () => ({}), write: async () => undefined } as unknown as AcmeStorage;
    const controller = new AbortController();
    // As runOrder's step: awaits the work, but gives up at once when the attempt is interrupted.
    const step = async <T>(work: Promise<T>): Promise<T> => Promise.race([work, interrupted(controller.signal).promise]);
    const { logger } = capturingLogger();
    const publishing = publishDnsRecord(
      {
        solver,
        storage,
        domain: '*.x.test',
        identifier: 'x.test',
        value: 'v',
        records: new Map(),
        pending: () => ({ orderUrl: 'https://ca/order/1', startedAt: new Date(0).toISOString(), tokens: [], by: 'me' }),
        now: () => new Date(0),
        signal: controller.signal,
      },
      logger,
      step,
    );
    let settled = false;
    void publishing.catch(() => undefined).finally(() => (settled = true));
    while (finish === undefined) await new Promise((resolve) => setImmediate(resolve));
    controller.abort();
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(false);
    finish();
    await expect(publishing).rejects.toBeInstanceOf(Interrupted);
  });
});
