import { defineConfig } from 'vitest/config';

// The image tests, run only by scripts/image-test.sh (inside the holder container's network
// namespace, after building the image): `*.spec.ts`, so the main suite's `*.test.ts` never picks
// them up. One file at a time: they share that namespace's ports 80, 443 and 8404.
export default defineConfig({
  test: {
    include: ['test/image/**/*.spec.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
