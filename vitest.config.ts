import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests each start their own etcd and HAProxy on random ports;
    // two files at a time keeps a 2-core machine responsive.
    maxWorkers: 2,
    fileParallelism: true,
  },
});
