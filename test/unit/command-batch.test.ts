import { describe, expect, it } from 'vitest';
import { CommandBatch } from '../../src/haproxy/command-batch.js';

describe('CommandBatch', () => {
  it('sends the commands of one turn on one line, and a later one on its own', async () => {
    const lines: string[] = [];
    const batch = new CommandBatch(
      async (line) => {
        lines.push(line);
        return '';
      },
      () => false,
    );
    await Promise.all([batch.run('a'), batch.run('b'), batch.run('c')]);
    await batch.run('d');
    expect(lines).toEqual(['a; b; c', 'd']);
  });

  it('splits what would make a line longer than HAProxy reads', async () => {
    const lines: string[] = [];
    const batch = new CommandBatch(
      async (line) => {
        lines.push(line);
        return '';
      },
      () => false,
    );
    const commands = Array.from({ length: 400 }, (_, i) => `set server http-service-${i}/instance-${i} health up`);
    await Promise.all(commands.map((c) => batch.run(c)));
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(8 * 1024);
    expect(lines.join('; ')).toBe(commands.join('; '));
  });

  it('reports only the command HAProxy refused when a line fails', async () => {
    const lines: string[] = [];
    const batch = new CommandBatch(
      async (line) => {
        lines.push(line);
        return line.includes('gone') ? 'No such server.\n' : '\n';
      },
      (answer) => /No such/.test(answer),
    );
    const results = await Promise.allSettled([batch.run('set server b/gone health up'), batch.run('set server b/here health up')]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled']);
    expect(String((results[0] as PromiseRejectedResult).reason)).toContain('No such server.');
    expect(lines).toEqual(['set server b/gone health up; set server b/here health up', 'set server b/gone health up', 'set server b/here health up']);
  });

  it('sends nothing while held, then only what release keeps', async () => {
    const lines: string[] = [];
    const batch = new CommandBatch(
      async (line) => {
        lines.push(line);
        return '';
      },
      () => false,
    );
    batch.hold();
    const kept = batch.run('set server b/s1 health up', 'b/s1@10.0.0.1:80');
    const dropped = batch.run('set server b/s2 health up', 'b/s2@10.0.0.2:80');
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines).toEqual([]);
    batch.release((tag) => tag === 'b/s1@10.0.0.1:80');
    await Promise.all([kept, dropped]);
    expect(lines).toEqual(['set server b/s1 health up']);
  });
});
