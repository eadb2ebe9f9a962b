import { describe, expect, it } from 'vitest';
import { CommandBatch } from '../../src/haproxy/command-batch.js';

describe('CommandBatch', () => {
  it('sends the commands of one turn on one line, and a later one on its own', async () => {
    const lines: string[] = [];
    const batch = new CommandBatch(async (line) => { lines.push(line); return ''; }, () => false);
    await Promise.all([batch.run('a'), batch.run('b'), batch.run('c')]);
    await batch.run('d');
    expect(lines).toEqual(['a; b; c', 'd']);
  });

  it('splits what would make a line longer than HAProxy reads', async () => {
    const lines: string[] = [];
    const batch = new CommandBatch(async (line) => { lines.push(line); return ''; }, () => false);
    const commands = Array.from({ length: 400 }, (_, i) => `set server http-service-${i}/instance-${i} health up`);
    await Promise.all(commands.map((c) => batch.run(c)));
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(8 * 1024);
    expect(lines.join('; ')).toBe(commands.join('; '));
  });

  it('rejects every command of a line whose answer reports a failure, and only those', async () => {
    const batch = new CommandBatch(async (line) => (line.includes('gone') ? 'No such server.\n' : '\n'), (answer) => /No such/.test(answer));
    const results = await Promise.allSettled([batch.run('set server b/gone health up'), batch.run('set server b/here health up')]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(String((results[0] as PromiseRejectedResult).reason)).toContain('No such server.');
    await expect(batch.run('set server b/here health up')).resolves.toBeUndefined();
  });
});
