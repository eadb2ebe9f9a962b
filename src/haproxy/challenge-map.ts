import type { Challenges } from '../model/challenges.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import type { ChallengeMapRenderer } from '../render/render.js';
import type { HaproxyRuntime } from './runtime.js';

/**
 * The ACME challenge tokens as an HAProxy map file (token → key authorization), which the
 * frontend answers from ahead of every route. Tokens come and go during every order, so a
 * running HAProxy gets them through the runtime API (`add/set/del map`), never a reload.
 */
export class ChallengeMap {
  constructor(
    readonly file: string,
    private readonly runtime: HaproxyRuntime,
    private readonly renderMap: ChallengeMapRenderer,
  ) {}

  async write(challenges: Challenges): Promise<void> {
    await writeFileAtomic(this.file, this.renderMap(challenges), 0o600);
  }

  async applyRuntime(before: Challenges, after: Challenges): Promise<number> {
    let operations = 0;
    for (const [token, value] of after) {
      const old = before.get(token);
      if (old === value) continue;
      await this.runtime.run(`${old === undefined ? 'add' : 'set'} map ${this.file} ${token} ${value}`);
      operations++;
    }
    for (const token of before.keys()) {
      if (after.has(token)) continue;
      await this.runtime.run(`del map ${this.file} ${token}`);
      operations++;
    }
    return operations;
  }
}
