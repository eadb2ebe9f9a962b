// The image's HEALTHCHECK: GET /healthz on edgelb's admin port; exit 0 on 200, 1 otherwise.
// Node rather than curl: the HAProxy image has no curl, and Node is there anyway.
import http from 'node:http';

const port = Number(process.env.KONTENA_LB_ADMIN_PORT || 8404);
const bind = process.env.KONTENA_LB_ADMIN_BIND || '127.0.0.1';
const host = bind === '0.0.0.0' ? '127.0.0.1' : bind === '::' ? '::1' : bind;

const req = http.get({ host, port, path: '/healthz', timeout: 2500 }, (res) => {
  let body = '';
  res.setEncoding('utf8');
  res.on('data', (chunk) => (body += chunk));
  res.on('end', () => {
    process.stdout.write(body);
    process.exit(res.statusCode === 200 ? 0 : 1);
  });
});
req.on('timeout', () => req.destroy(new Error('no answer within 2.5 s')));
req.on('error', (error) => {
  process.stdout.write(`edgelb admin port ${host}:${port}: ${error.message}\n`);
  process.exit(1);
});
