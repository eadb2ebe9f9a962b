import { EventEmitter } from 'node:events';
import type { Namespace } from 'etcd3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CampaignElection } from '../../src/acme/campaign-election.js';
import { Interrupted } from '../../src/acme/interruption.js';
import { AcmeStorage } from '../../src/acme/storage.js';
import type { KvStore } from '../../src/etcd/store.js';
import { createLogger } from '../../src/log.js';

// The v3 leader election (etcd3's Election and Campaign) against a fake election and fake timers:
// the oldest campaign leads; a leader whose lease renewal is late steps down (no fence, so no
// write leaves it) and leads again once a renewal shows the lease lived; a lost lease ends the
// campaign and another replica takes over; a resignation hands over at once.

const logger = createLogger('silent', false);
const TTL = 3;

class FakeLease extends EventEmitter {
  constructor(readonly id: string) {
    super();
  }

  grant(): Promise<string> {
    return Promise.resolve(this.id);
  }
}

class FakeCampaign extends EventEmitter {
  readonly lease: FakeLease;
  resigned = false;

  constructor(
    private readonly hub: FakeElection,
    readonly value: string,
    id: string,
  ) {
    super();
    this.lease = new FakeLease(id);
  }

  resign(): Promise<void> {
    this.resigned = true;
    this.hub.remove(this);
    return Promise.resolve();
  }

  /** etcd expired the lease: the campaign key is gone, and the library reports the campaign failed. */
  lose(): void {
    this.hub.remove(this);
    this.emit('error', new Error('lease lost'));
  }
}

/** One election: campaigns queue by creation, the first one leads (etcd's oldest key). */
class FakeElection {
  readonly queue: FakeCampaign[] = [];
  /** `acme/leader`, which replicas of an earlier version lead through: a value on a lease. */
  legacy: { value: string; lease: string } | undefined;
  private leases = 100;

  campaign(value: string): FakeCampaign {
    const campaign = new FakeCampaign(this, value, String(++this.leases));
    this.queue.push(campaign);
    if (this.queue.length === 1) setTimeout(() => campaign.emit('elected'), 0);
    return campaign;
  }

  remove(campaign: FakeCampaign): void {
    const index = this.queue.indexOf(campaign);
    if (index < 0) return;
    if (this.legacy?.lease === campaign.lease.id) this.legacy = undefined;
    this.queue.splice(index, 1);
    const next = this.queue[0];
    if (index === 0 && next) setTimeout(() => next.emit('elected'), 0);
  }

  /** The etcd3 client as CampaignElection uses it: namespace → election → campaign, and get(key). */
  client(): Namespace {
    const election = { campaign: (value: string) => this.campaign(value) };
    const put = (key: string) => ({ value: (value: string) => ({ lease: (lease: string) => ({ key, value, lease }) }) });
    return {
      namespace: () => ({ election: () => election }),
      get: (key: string) => ({
        exec: async () => ({ kvs: [{ create_revision: '7' }] }),
        string: async () => (key.endsWith('/acme/leader') ? (this.legacy?.value ?? null) : null),
      }),
      put,
      // The transactions: create acme/leader on the campaign's lease unless it exists, or move it
      // onto that lease when it holds this replica's id.
      if: (_key: string, target: string) => ({
        // biome-ignore lint/suspicious/noThenProperty: etcd3's transaction builder has then(), as this fake must
        then: (op: { value: string; lease: string }) => ({
          commit: async () => {
            if (target === 'Value' && this.legacy?.value === op.value) {
              this.legacy = { value: op.value, lease: op.lease };
              return { succeeded: true };
            }
            if (this.legacy) return { succeeded: false };
            this.legacy = { value: op.value, lease: op.lease };
            return { succeeded: true };
          },
        }),
      }),
    } as unknown as Namespace;
  }
}

function replica(hub: FakeElection, id: string) {
  const changes: boolean[] = [];
  const election = new CampaignElection({ client: hub.client(), prefix: '/lb', id, ttlSeconds: TTL, logger, onChange: (leading) => changes.push(leading) });
  const campaign = () => hub.queue.find((c) => c.value === id);
  return { election, changes, campaign };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('CampaignElection', () => {
  it('leads once elected, with its campaign key on its lease as the fencing token', async () => {
    vi.useFakeTimers();
    const hub = new FakeElection();
    const a = replica(hub, 'a');
    a.election.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(a.election.isLeader()).toBe(true);
    expect(a.election.fence()).toEqual({ key: '/lb/acme/election/leader/101', lease: '101' });
    expect(a.changes).toEqual([true]);
    await a.election.stop();
    expect(a.changes).toEqual([true, false]);
  });

  it('steps down while the lease renewal is late (no fence, so the storage writes nothing), and leads again once a renewal comes', async () => {
    vi.useFakeTimers();
    const hub = new FakeElection();
    const a = replica(hub, 'a');
    const fencedWrite = vi.fn(async () => ({ succeeded: true, revision: '9' }));
    const storage = new AcmeStorage({
      store: { fencedWrite } as unknown as KvStore,
      prefix: '/lb',
      logger,
      now: () => new Date(),
      fence: () => a.election.fence(),
    });
    a.election.start();
    await vi.advanceTimersByTimeAsync(0);
    await storage.write(logger, [storage.put('acme/state/x', '{}')]);
    expect(fencedWrite).toHaveBeenCalledTimes(1);

    // No keepalive for 2/3 of the TTL: unsure of the lease, the leader steps down before etcd could expire it.
    await vi.advanceTimersByTimeAsync((TTL * 1000 * 2) / 3 + (TTL * 1000) / 3);
    expect(a.election.isLeader()).toBe(false);
    expect(a.election.fence()).toBeUndefined();
    expect(a.changes).toEqual([true, false]);
    await expect(storage.write(logger, [storage.put('acme/state/x', '{}')])).rejects.toBeInstanceOf(Interrupted);
    expect(fencedWrite).toHaveBeenCalledTimes(1);

    // The renewal arrives: the lease lived, so its key still leads.
    a.campaign()!.lease.emit('keepaliveSucceeded');
    expect(a.election.isLeader()).toBe(true);
    expect(a.changes).toEqual([true, false, true]);
    await a.election.stop();
  });

  it('a lost lease ends leading at once; the other replica takes over, and the first campaigns again behind it', async () => {
    vi.useFakeTimers();
    const hub = new FakeElection();
    const a = replica(hub, 'a');
    const b = replica(hub, 'b');
    a.election.start();
    await vi.advanceTimersByTimeAsync(0);
    b.election.start();
    await vi.advanceTimersByTimeAsync(0);
    expect([a.election.isLeader(), b.election.isLeader()]).toEqual([true, false]);

    const lost = a.campaign()!;
    lost.lose();
    expect(a.election.isLeader()).toBe(false);
    expect(a.election.fence()).toBeUndefined();
    expect(lost.resigned).toBe(true);
    await vi.advanceTimersByTimeAsync(0);
    expect(b.election.isLeader()).toBe(true);
    expect(b.election.fence()).toMatchObject({ lease: b.campaign()!.lease.id });

    // After a backoff (at most 100 ms the first time) A is a candidate again, behind B.
    await vi.advanceTimersByTimeAsync(100);
    expect(hub.queue.map((c) => c.value)).toEqual(['b', 'a']);
    expect(a.election.isLeader()).toBe(false);
    expect(a.changes).toEqual([true, false]);
    await a.election.stop();
    await b.election.stop();
  });

  it('a leader that resigns hands over at once and campaigns no more', async () => {
    vi.useFakeTimers();
    const hub = new FakeElection();
    const a = replica(hub, 'a');
    const b = replica(hub, 'b');
    a.election.start();
    b.election.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(a.election.isLeader()).toBe(true);
    await a.election.stop();
    await vi.advanceTimersByTimeAsync(0);
    expect(b.election.isLeader()).toBe(true);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(hub.queue.map((c) => c.value)).toEqual(['b']);
    await b.election.stop();
  });

  it('holds acme/leader while leading, and waits while a replica of an earlier version holds it (rolling upgrade)', async () => {
    vi.useFakeTimers();
    const hub = new FakeElection();
    hub.legacy = { value: 'old-replica', lease: '1' };
    const a = replica(hub, 'a');
    a.election.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(a.election.isLeader()).toBe(false);
    expect(a.changes).toEqual([]);
    // The old replica stops (its lease expires): the next campaign leads and holds the key itself.
    hub.legacy = undefined;
    await vi.advanceTimersByTimeAsync(200);
    expect(a.election.isLeader()).toBe(true);
    expect(hub.legacy).toMatchObject({ value: 'a' });
    await a.election.stop();
    expect(hub.legacy).toBeUndefined();
  });

  it("takes back acme/leader left with its own id on an earlier lease, onto the new campaign's lease", async () => {
    vi.useFakeTimers();
    const hub = new FakeElection();
    hub.legacy = { value: 'a', lease: '1' };
    const a = replica(hub, 'a');
    a.election.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(a.election.isLeader()).toBe(true);
    expect(hub.legacy).toEqual({ value: 'a', lease: a.campaign()!.lease.id });
    await a.election.stop();
  });

  it('a snapshot newer than the election without the campaign key ends leading', async () => {
    vi.useFakeTimers();
    const hub = new FakeElection();
    const a = replica(hub, 'a');
    a.election.start();
    await vi.advanceTimersByTimeAsync(0);
    const key = 'acme/election/leader/101';
    a.election.follow({ revision: '6', get: () => undefined }); // older than the key: says nothing
    a.election.follow({ revision: '8', get: (k) => (k === key ? 'a' : undefined) });
    expect(a.election.isLeader()).toBe(true);
    a.election.follow({ revision: '9', get: () => undefined });
    expect(a.election.isLeader()).toBe(false);
    await a.election.stop();
  });
});
