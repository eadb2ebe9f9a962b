/**
 * Benchmarks, by name:  npm run bench -- <name> [options]
 * Without a name, lists the benchmarks there are.
 */

interface Benchmark {
  readonly description: string;
  readonly load: () => Promise<{ run(args: readonly string[]): Promise<number> }>;
}

const BENCHMARKS: Readonly<Record<string, Benchmark>> = {
  convergence: {
    description: 'time from an etcd write to the first request routed by it (new service; instance removed; instance added and proven healthy)',
    load: () => import('./convergence.js'),
  },
  scale: {
    description: 'up to 10,000 services × N instances: first apply, instance change latency at that size, controller and HAProxy memory',
    load: () => import('./scale.js'),
  },
  tls: {
    description: 'TLS: new certificate → served (latency), full handshakes/s with 1 vs 1,000 certificates, failures during certificate swaps under load',
    load: () => import('./tls.js'),
  },
  'no-drops': {
    description: 'constant HTTP load (keep-alive + new connections) while 500 instance and structural changes apply: failed requests',
    load: () => import('./no-drops.js'),
  },
  'data-plane': {
    description:
      'requests/s and latency (wrk) through edgelb vs a plain HAProxy, Caddy, nginx and the backend directly, access logs on and off, rotating rounds, as ratios',
    load: () => import('./data-plane.js'),
  },
  policies: {
    description:
      'requests/s of a service with rate limit, allow list, headers and CORS vs the same service with none, alternating rounds, as a ratio (issue 15)',
    load: () => import('./policies.js'),
  },
  peers: {
    description: 'two replicas sharing one rate limit through HAProxy peers (KONTENA_LB_PEERS=etcd): requests allowed vs the limit, sync lag A → B (issue 15)',
    load: () => import('./peers.js'),
  },
  readdress: {
    description:
      'a single-instance service whose instance moves between two live addresses under load (a redeploy keeping its name): failed requests, move → traffic time',
    load: () => import('./readdress.js'),
  },
  'etcd-failover': {
    description:
      "3-member etcd cluster, a member (the watch's, or the leader) killed under load: failed requests, leader election, change delay after the kill",
    load: () => import('./etcd-failover.js'),
  },
  'reload-hygiene': {
    description: '500 structural reloads under load: HAProxy process count, HAProxy and controller memory, failed requests',
    load: () => import('./reload-hygiene.js'),
  },
};

function list(): string {
  const width = Math.max(...Object.keys(BENCHMARKS).map((n) => n.length));
  return [
    'usage: npm run bench -- <name> [options]   (options: npm run bench -- <name> --help)',
    '',
    'benchmarks:',
    ...Object.entries(BENCHMARKS).map(([name, b]) => `  ${name.padEnd(width)}  ${b.description}`),
  ].join('\n');
}

async function main(): Promise<number> {
  const [name, ...args] = process.argv.slice(2);
  if (name === undefined || name === '--help' || name === '-h' || name === 'list') {
    process.stdout.write(`${list()}\n`);
    return 0;
  }
  const benchmark = BENCHMARKS[name];
  if (!benchmark) {
    process.stderr.write(`bench: no benchmark named ${JSON.stringify(name)}\n\n${list()}\n`);
    return 2;
  }
  const module = await benchmark.load();
  return module.run(args);
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    process.stderr.write(`bench: ${error.stack ?? error.message}\n`);
    process.exit(1);
  },
);
