import http from 'node:http';
import type { AddressInfo } from 'node:net';
import acme from 'acme-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectAcme } from '../../src/acme/issuer.js';
import { freePort } from '../support/ports.js';

// The acme-client wrapper against a tiny fake CA on loopback: errors in the CA's words, no
// hidden retries inside acme-client, network errors explained.

let server: http.Server;
let base: string;
let accountKey: Buffer;
const requests: string[] = [];
let answer: { status: number; body: object; headers?: Record<string, string> } = { status: 200, body: {} };

beforeAll(async () => {
  accountKey = await acme.crypto.createPrivateEcdsaKey();
  server = http.createServer((req, res) => {
    req.resume();
    requests.push(`${req.method} ${req.url}`);
    if (req.url === '/dir') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ newNonce: `${base}/nonce`, newAccount: `${base}/account`, newOrder: `${base}/order` }));
    } else if (req.url === '/nonce') {
      res.writeHead(200, { 'replay-nonce': 'n1' });
      res.end();
    } else {
      res.writeHead(answer.status, { 'content-type': 'application/problem+json', 'replay-nonce': 'n2', ...answer.headers });
      res.end(JSON.stringify(answer.body));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => {
  server.close();
});

async function failureOf(directoryUrl: string) {
  const connection = connectAcme({ directoryUrl, accountKey, timeoutMs: 2000 });
  try {
    await connection.client.createAccount({ termsOfServiceAgreed: true });
  } catch (error) {
    return connection.explain(error);
  } finally {
    connection.close();
  }
  throw new Error('expected createAccount to fail');
}

describe('connectAcme', () => {
  it("explains a CA error with the problem's detail, type and status", async () => {
    answer = { status: 403, body: { type: 'urn:ietf:params:acme:error:unauthorized', detail: 'Account creation on this CA\nis disabled', status: 403 } };
    expect(await failureOf(`${base}/dir`)).toEqual({
      message: 'Account creation on this CA is disabled',
      type: 'urn:ietf:params:acme:error:unauthorized',
      status: 403,
    });
  });

  it('passes Retry-After on, and does not retry inside acme-client (edgelb backs off instead)', async () => {
    answer = { status: 503, body: { type: 'urn:ietf:params:acme:error:serverInternal', detail: 'down for maintenance' }, headers: { 'retry-after': '120' } };
    requests.length = 0;
    const started = Date.now();
    expect(await failureOf(`${base}/dir`)).toMatchObject({ message: 'down for maintenance', status: 503, retryAfterMs: 120_000 });
    expect(Date.now() - started).toBeLessThan(1500);
    expect(requests.filter((r) => r === 'POST /account')).toHaveLength(1);
  });

  it('explains a refused connection in plain words', async () => {
    const port = await freePort();
    const failure = await failureOf(`http://127.0.0.1:${port}/dir`);
    expect(failure.message).toBe(`cannot reach the ACME server at 127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}`);
  });

  it('explains an unknown host', async () => {
    const failure = await failureOf('http://no-such-host.invalid/dir');
    expect(failure.message).toMatch(/^cannot reach the ACME server at no-such-host\.invalid: getaddrinfo (ENOTFOUND|EAI_AGAIN)/);
  });
});
