import { BrokenCircuitError } from 'cockatiel';
import { EtcdPermissionDeniedError, GRPCUnavailableError } from 'etcd3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { v3FaultHandling } from '../../src/etcd/v3-fault-handling.js';

// How the etcd3 library is told to treat a failing member (see v3-fault-handling.ts): the
// policies are driven the way its connection pool drives them, with a fake clock.

afterEach(() => {
  vi.useRealTimers();
});

const fail = (error: Error) => () => {
  throw error;
};
const ok = () => 'stream';

describe('the member policy of the v3 client', () => {
  it('with several endpoints, one failure keeps the member out for 200 ms, then one trial call decides', async () => {
    vi.useFakeTimers({ now: 0 });
    const policy = v3FaultHandling(3).host!('127.0.0.1:2379');
    // A watch stream is opened (a success), then it breaks and the library marks the member failed.
    await expect(policy.execute(ok)).resolves.toBe('stream');
    await expect(policy.execute(fail(new GRPCUnavailableError('14 UNAVAILABLE: Connection dropped')))).rejects.toBeInstanceOf(GRPCUnavailableError);
    await expect(policy.execute(ok)).rejects.toBeInstanceOf(BrokenCircuitError);
    vi.setSystemTime(199);
    await expect(policy.execute(ok)).rejects.toBeInstanceOf(BrokenCircuitError);
    vi.setSystemTime(200);
    await expect(policy.execute(ok)).resolves.toBe('stream');
  });

  it('a member that keeps failing its trial calls stays out longer, up to a second', async () => {
    vi.useFakeTimers({ now: 0 });
    const policy = v3FaultHandling(2).host!('127.0.0.1:2379');
    const down = fail(new GRPCUnavailableError('14 UNAVAILABLE: connect ECONNREFUSED'));
    await expect(policy.execute(down)).rejects.toBeInstanceOf(GRPCUnavailableError);
    let openedAt = 0;
    // Each trial call at the end of the open time fails, and opens it for longer.
    for (const open of [200, 400, 800, 1000, 1000]) {
      vi.setSystemTime(openedAt + open - 1);
      await expect(policy.execute(ok)).rejects.toBeInstanceOf(BrokenCircuitError);
      vi.setSystemTime(openedAt + open);
      await expect(policy.execute(down)).rejects.toBeInstanceOf(GRPCUnavailableError);
      openedAt += open;
    }
  });

  it('an error that says nothing about the member (a refusal) does not keep it out', async () => {
    const policy = v3FaultHandling(3).host!('127.0.0.1:2379');
    await expect(policy.execute(fail(new EtcdPermissionDeniedError('etcdserver: permission denied')))).rejects.toBeInstanceOf(EtcdPermissionDeniedError);
    await expect(policy.execute(ok)).resolves.toBe('stream');
  });

  it('a refused TLS handshake does not keep the member out: every member has the same certificates, and the cause must stay visible', async () => {
    const policy = v3FaultHandling(3).host!('127.0.0.1:2379');
    const refused = new GRPCUnavailableError('14 UNAVAILABLE: No connection established. Last error: sslv3 alert bad certificate, SSL alert number 42');
    await expect(policy.execute(fail(refused))).rejects.toBe(refused);
    await expect(policy.execute(fail(refused))).rejects.toBe(refused);
    await expect(policy.execute(ok)).resolves.toBe('stream');
  });

  it('with a single endpoint there is nowhere else to go: calls are never refused', async () => {
    const policy = v3FaultHandling(1).host!('127.0.0.1:2379');
    for (let i = 0; i < 5; i++) {
      await expect(policy.execute(fail(new GRPCUnavailableError('14 UNAVAILABLE')))).rejects.toBeInstanceOf(GRPCUnavailableError);
    }
    await expect(policy.execute(ok)).resolves.toBe('stream');
  });
});
