import { describe, expect, it } from 'vitest';
import { DnsHookPublisher } from '../../src/acme/dns-hook.js';
import { capturingLogger } from '../support/log-capture.js';

describe('DnsHookPublisher', () => {
  it('a hook that cannot be started (gone since the settings were checked) fails saying so, not as killed by a signal', async () => {
    const hook = new DnsHookPublisher({ path: '/nonexistent/edgelb-dns-hook', timeoutMs: 5000, withheldEnv: [] });
    const { logs, logger } = capturingLogger();
    await expect(hook.present({ fqdn: '_acme-challenge.x.test.', value: 'v' }, logger, new AbortController().signal)).rejects.toThrow(
      /the DNS hook's present for _acme-challenge\.x\.test\. could not be started \(ENOENT\)$/,
    );
    expect(logs.find((l) => l.msg === 'ACME DNS hook failed')).toMatchObject({ action: 'present', why: 'could not be started (ENOENT)' });
  });
});
