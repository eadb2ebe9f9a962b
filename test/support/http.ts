import http from 'node:http';

export interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  /** The backend name when a test backend answered, else undefined. */
  readonly backend: string | undefined;
  /** The URL the backend received. */
  readonly backendUrl: string | undefined;
}

const agent = new http.Agent({ keepAlive: false });

/** One GET through the load balancer with the given Host header; never keeps the connection. */
export function get(port: number, urlPath: string, host = 'localhost', timeoutMs = 5000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method: 'GET', headers: { host }, agent, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let parsed: { backend?: string; url?: string } = {};
        if (String(res.headers['content-type']).startsWith('application/json')) {
          try {
            parsed = JSON.parse(body) as typeof parsed;
          } catch {
            // not one of ours
          }
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, backend: parsed.backend, backendUrl: parsed.url });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`request timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}
