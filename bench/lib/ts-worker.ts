import { Worker } from 'node:worker_threads';

/**
 * A worker thread running a TypeScript module. The benchmarks run under `node --import tsx`,
 * whose loader does not reach worker threads (Node 20), so the worker first registers tsx
 * itself, then imports the module.
 */
export function startTsWorker(module: URL, workerData: unknown): Worker {
  const tsx = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(tsx)}).then((api) => api.register()).then(() => import(${JSON.stringify(module.href)}))`;
  return new Worker(bootstrap, { eval: true, workerData });
}

/** The next message from `worker` that `accept` takes; rejects if the worker fails or exits first. */
export function nextMessage<T>(worker: Worker, accept: (message: unknown) => message is T, timeoutMs = 60_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`no answer from a worker thread within ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (message: unknown) => {
      if (accept(message)) done(undefined, message);
    };
    const onError = (error: Error) => done(error);
    const onExit = (code: number) => done(new Error(`worker thread exited (code ${code})`));
    function done(error: Error | undefined, message?: T) {
      clearTimeout(timer);
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
      if (error) reject(error);
      else resolve(message as T);
    }
    worker.on('message', onMessage);
    worker.once('error', onError);
    worker.once('exit', onExit);
  });
}
