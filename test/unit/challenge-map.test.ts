import { describe, expect, it } from 'vitest';
import { createChallengeMapRenderer } from '../../src/render/render.js';

// The ACME challenge map's line format comes from templates/challenge-map.hbs.

describe('createChallengeMapRenderer', () => {
  const render = createChallengeMapRenderer();

  it('writes one `<token> <key authorization>` line per token, in the given order', () => {
    expect(
      render(
        new Map([
          ['tokA', 'tokA.thumb'],
          ['tok_B-2', 'tok_B-2.thumb'],
        ]),
      ),
    ).toBe('tokA tokA.thumb\ntok_B-2 tok_B-2.thumb\n');
  });

  it('writes an empty file for no tokens (HAProxy loads an empty map)', () => {
    expect(render(new Map())).toBe('');
  });
});
