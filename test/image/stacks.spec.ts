import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { SETTINGS } from '../../src/config.js';
import { makeLeaf, type LeafCert } from '../support/certs.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { get } from '../support/http.js';
import { exitCodeOf, runImage, waitWhileRunning, type Container } from './docker.js';

// Each docker/stack-*.yml's load balancer, started from the image with the environment the stack
// gives it (its `environment:` and its secrets, with test values), against a real etcd: a
// variable edgelb refuses (a bad value stops edgelb with the reason) fails here, and every
// KONTENA_LB_* name must be one of edgelb's settings (an unknown one would be silently ignored).

const ROOT = path.resolve(import.meta.dirname, '../..');
const DOCKER_DIR = path.join(ROOT, 'docker');
const stackFiles = readdirSync(DOCKER_DIR).filter((f) => /^stack-.*\.yml$/.test(f));
const SETTING_NAMES = new Set<string>(SETTINGS.map((s) => s.env));

interface StackService {
  image?: string;
  environment?: string[] | Record<string, unknown>;
  secrets?: { secret: string; name: string; type: string }[];
}

interface LoadBalancer {
  /** The stack's name without its namespace, as the platform passes KONTENA_STACK_NAME. */
  readonly stackName: string;
  readonly serviceName: string;
  readonly environment: Record<string, string>;
  readonly secretNames: string[];
}

function loadBalancerOf(file: string): LoadBalancer {
  const stack = parseYaml(readFileSync(path.join(DOCKER_DIR, file), 'utf8')) as { stack: string; services: Record<string, StackService> };
  const [serviceName, lb] = Object.entries(stack.services).find(([, s]) => s.image?.startsWith('edgelb'))!;
  const environment = Array.isArray(lb.environment)
    ? Object.fromEntries(lb.environment.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]))
    : Object.fromEntries(Object.entries(lb.environment ?? {}).map(([k, v]) => [k, String(v)]));
  return { stackName: stack.stack.split('/').at(-1)!, serviceName, environment, secretNames: (lb.secrets ?? []).map((s) => s.name) };
}

/** Test values for the secrets the stacks hand the load balancer as environment variables. */
function secretValue(name: string, cert: LeafCert): string {
  if (name === 'SSL_CERTS' || name.startsWith('SSL_CERT_')) return cert.bundlePem;
  if (name === 'KONTENA_LB_VAULT_KEY') return 'image-test-vault-key-0123456789abcdef';
  if (name === 'STATS_PASSWORD') return 'image-test-stats-password';
  throw new Error(`no test value for the secret ${name}: add one to test/image/stacks.spec.ts`);
}

describe('the docker/stack-*.yml load balancers, started from the image', () => {
  let etcd: EtcdServer;
  let cert: LeafCert;
  const started: Container[] = [];

  beforeAll(async () => {
    etcd = await startEtcd();
    cert = await makeLeaf({ names: ['www.example.com', 'shop.example.com', 'api.example.com', 'master.example.com'] });
  });

  afterAll(async () => {
    for (const container of started) await container.remove();
    await etcd?.stop();
  });

  /** The stack's environment, its secrets, and what the platform adds (its etcd path and, here, etcd's address). */
  function environmentOf(lb: LoadBalancer): Record<string, string> {
    return {
      ...lb.environment,
      ...Object.fromEntries(lb.secretNames.map((name) => [name, secretValue(name, cert)])),
      KONTENA_STACK_NAME: lb.stackName,
      KONTENA_SERVICE_NAME: lb.serviceName,
      // The platform gives no ETCD_NODE (edgelb then asks the default gateway); here etcd is on loopback.
      ETCD_ENDPOINTS: etcd.endpoint,
    };
  }

  it('has stack files to start', () => {
    expect(stackFiles.length).toBeGreaterThanOrEqual(3);
  });

  it.each(stackFiles)('%s: every KONTENA_LB_* variable is an edgelb setting, and the image serves with them all', async (file) => {
    const lb = loadBalancerOf(file);
    const names = [...Object.keys(lb.environment), ...lb.secretNames].filter((n) => n.startsWith('KONTENA_LB_'));
    for (const name of names) expect(SETTING_NAMES.has(name), `${file}: ${name} is not an edgelb setting`).toBe(true);

    const env = environmentOf(lb);
    const container = await runImage({ env });
    started.push(container);
    try {
      const adminPort = Number(env.KONTENA_LB_ADMIN_PORT ?? 8404);
      // /healthz is what the image's HEALTHCHECK asks: 200 once HAProxy serves a validated config.
      await waitWhileRunning(container, async () => (await get(adminPort, '/healthz').catch(() => undefined))?.status === 200, {
        timeoutMs: 60_000,
        what: `${file}: /healthz on the admin port to answer 200`,
      });
      if (env.KONTENA_LB_HEALTH_URI !== undefined) {
        const reply = await get(Number(env.KONTENA_LB_HTTP_PORT ?? 80), env.KONTENA_LB_HEALTH_URI, 'probe.example.com');
        expect(reply.status, `${file}: KONTENA_LB_HEALTH_URI ${env.KONTENA_LB_HEALTH_URI} answered by HAProxy`).toBe(200);
      }
      await container.stop(35);
      expect(await exitCodeOf(container), `${file}: exit code after docker stop`).toBe(0);
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${file}: the container's log ends:\n${(await container.logs()).slice(-4000)}`);
    } finally {
      // The next stack's container binds the same ports in the same namespace.
      await container.remove();
    }
  });

  it('a value edgelb refuses stops the container with the reason (so the runs above can fail)', async () => {
    const lb = loadBalancerOf('stack-lb.yml');
    const container = await runImage({ env: { ...environmentOf(lb), LOG_LEVEL: 'loudest' } });
    started.push(container);
    expect(await exitCodeOf(container)).not.toBe(0);
    expect(await container.logs()).toContain('LOG_LEVEL');
  });
});
