/**
 * The data plane edgelb is compared with: a backend (nginx serving a small static answer), and
 * reference reverse proxies in front of it: a plain HAProxy with a hand-written config, nginx and
 * Caddy. Each runs from its own config in a temp dir, on loopback ports it is given, in its own
 * process group (scripts/lib/local-stack.ts spawnChild), stopped by PID; each writes its access
 * log to a file in that dir, as edgelb's goes to the file its stdout is.
 */
import { closeSync, openSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BACKEND_HEADER, request, spawnChild, waitFor, type Child } from '../../scripts/lib/local-stack.js';

export const NGINX_BIN = '/usr/sbin/nginx';
export const CADDY_BIN = '/usr/bin/caddy';
/** What the backend answers with, so a check can tell it answered through a proxy. */
export const BACKEND_NAME = 'nginx-backend';

export interface Running {
  readonly name: string;
  readonly port: number;
  readonly child: Child;
  /** Where it writes its access log; undefined: it writes none. */
  readonly accessLog: string | undefined;
  stop(): Promise<void>;
}

/** Waits until GET / through `port` is answered 200 by the backend. */
export async function waitServed(port: number, host: string, what: string, bail?: () => void): Promise<void> {
  await waitFor(
    async () => {
      const reply = await request({ port, path: '/', host, timeoutMs: 2000 });
      return reply.status === 200 && reply.backend === BACKEND_NAME;
    },
    { timeoutMs: 60_000, intervalMs: 100, what: `${what} to answer through to the backend`, bail },
  );
}

function nginxCommon(dir: string, workers: number | 'auto'): string {
  // Temp paths in the dir: Debian's defaults (/var/lib/nginx) belong to the system's nginx.
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((k) => `    ${k}_temp_path ${path.join(dir, `${k}_temp`)};`).join('\n');
  return `worker_processes ${workers};
pid ${path.join(dir, 'nginx.pid')};
error_log ${path.join(dir, 'error.log')} warn;
daemon off;
events { worker_connections 4096; }
http {
${temp}
    keepalive_timeout 10s;
    keepalive_requests 1000000;
`;
}

async function startNginx(name: string, dir: string, config: string, port: number, accessLog: string | undefined): Promise<Running> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, 'nginx.conf');
  await writeFile(file, config);
  const child = spawnChild(name, NGINX_BIN, ['-p', dir, '-c', file, '-e', path.join(dir, 'error.log')], { onStdoutLine: () => undefined });
  return { name, port, child, accessLog, stop: () => child.stop('SIGQUIT', 10_000) };
}

/** The backend: nginx answering `ok` with its name in a header, no access log, one worker. */
export async function startBackend(dir: string, port: number): Promise<Running> {
  const config = `${nginxCommon(dir, 1)}    access_log off;
    server {
        listen 127.0.0.1:${port};
        location / {
            add_header ${BACKEND_HEADER} ${BACKEND_NAME} always;
            default_type text/plain;
            return 200 "ok\\n";
        }
    }
}
`;
  const running = await startNginx('backend-nginx', dir, config, port, undefined);
  await waitFor(async () => (await request({ port, path: '/', host: 'backend', timeoutMs: 2000 })).backend === BACKEND_NAME, {
    timeoutMs: 20_000,
    intervalMs: 50,
    what: 'the nginx backend',
    bail: () => {
      if (running.child.exited) throw new Error(`the nginx backend exited:\n${running.child.tail()}`);
    },
  });
  return running;
}

/** nginx as a reverse proxy: keep-alive to the backend, X-Forwarded-For, the combined log format (plus timings) to a file. */
export async function startNginxProxy(dir: string, port: number, backendPort: number): Promise<Running> {
  const accessLog = path.join(dir, 'access.log');
  const config = `${nginxCommon(dir, 'auto')}    log_format timed '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_time $upstream_response_time';
    access_log ${accessLog} timed;
    upstream backend {
        server 127.0.0.1:${backendPort};
        keepalive 64;
    }
    server {
        listen 127.0.0.1:${port};
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_connect_timeout 5s;
            proxy_send_timeout 60s;
            proxy_read_timeout 60s;
        }
    }
}
`;
  return startNginx('nginx-proxy', dir, config, port, accessLog);
}

/** Caddy's reverse_proxy (keep-alive and X-Forwarded-For by default), its JSON access log to a file; no admin endpoint, no HTTPS. */
export async function startCaddy(dir: string, port: number, backendPort: number): Promise<Running> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const accessLog = path.join(dir, 'access.log');
  const file = path.join(dir, 'Caddyfile');
  await writeFile(
    file,
    `{
	admin off
	auto_https off
	storage file_system ${path.join(dir, 'data')}
}

http://:${port} {
	bind 127.0.0.1
	reverse_proxy 127.0.0.1:${backendPort}
	log {
		output file ${accessLog} {
			roll_disabled
		}
		format json
	}
}
`,
  );
  const child = spawnChild('caddy', CADDY_BIN, ['run', '--config', file, '--adapter', 'caddyfile'], {
    env: { ...process.env, HOME: dir, XDG_DATA_HOME: path.join(dir, 'data'), XDG_CONFIG_HOME: path.join(dir, 'config') },
    onStdoutLine: () => undefined,
  });
  return { name: 'caddy', port, child, accessLog, stop: () => child.stop('SIGTERM', 10_000) };
}

/**
 * A plain HAProxy with the config an operator would write by hand to do what edgelb does for one
 * service: edgelb's timeouts, the same headers to the backend (`option forwardfor`,
 * X-Forwarded-Proto and -Port), routing by Host (case and port ignored, a 503 for any other),
 * retries and redispatch, a health-checked server, and (with `accessLog`) `option httplog`
 * written to its stdout, which is a file, as edgelb's is here. No ACME challenges, no runtime
 * API batching, nothing else edgelb adds.
 */
export async function startPlainHaproxy(
  dir: string,
  port: number,
  backendPort: number,
  haproxyBin: string,
  accessLog: boolean,
  host: string,
): Promise<Running> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, 'haproxy.cfg');
  const stdout = path.join(dir, 'stdout.log');
  await writeFile(
    file,
    `global
    stats socket ${path.join(dir, 'admin.sock')} mode 600 level admin
    hard-stop-after 1h

defaults
    mode http
${accessLog ? '    option httplog\n' : ''}    option dontlognull
    option redispatch
    retries 2
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    timeout http-keep-alive 10s
    timeout queue 10s
    timeout tunnel 1h

frontend http
${accessLog ? '    log stdout len 4096 format raw local0 info\n' : ''}    bind 127.0.0.1:${port}
    option forwardfor
    http-request set-header X-Forwarded-Proto http
    http-request set-header X-Forwarded-Port %[dst_port]
    use_backend web if { req.hdr(host),field(1,:),lower -m str ${host} }
    default_backend no-route

backend no-route
    http-request return status 503

backend web
    server web 127.0.0.1:${backendPort} check inter 2000ms
`,
  );
  const fd = openSync(stdout, 'a');
  try {
    const child = spawnChild(`haproxy${accessLog ? '' : '-off'}`, haproxyBin, ['-W', '-db', '-f', file], { stdoutFd: fd });
    return { name: child.name, port, child, accessLog: accessLog ? stdout : undefined, stop: () => child.stop('SIGTERM', 10_000) };
  } finally {
    closeSync(fd); // the child has its own copy
  }
}
