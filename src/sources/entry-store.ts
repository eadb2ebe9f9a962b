import { groupOf, SPLIT_DIRS, topDirOf, type Snapshot } from '../model/snapshot.js';
import type { Entries } from '../model/types.js';

/** Batches of changes remembered for changedSince; older ones are forgotten (consumers then do a full pass). */
const MAX_BATCHES = 1024;
/** Changed groups remembered over all batches: a mass change is recorded as "everything". */
const MAX_LOGGED_GROUPS = 50_000;

interface Batch {
  readonly seq: number;
  /** undefined: everything may have changed (a fresh read). */
  readonly groups: ReadonlySet<string> | undefined;
}

/**
 * The source's live keys, indexed by top-level directory and group (see groupOf), with a bounded
 * log of which groups each batch of changes touched. A change to one key costs its group's
 * lookups, and a consumer reads one group or one directory without scanning every key.
 */
export class EntryStore {
  /** top-level directory → group → key → value. */
  private readonly dirs = new Map<string, Map<string, Map<string, string>>>();
  private count = 0;
  /** Groups changed since the last seal(); undefined: everything. */
  private pending: Set<string> | undefined = new Set();
  private readonly log: Batch[] = [];
  private loggedGroups = 0;
  private seq = 0;
  /** Bumped on every mutation: a snapshot is readable only while it matches. */
  private version = 0;

  get size(): number {
    return this.count;
  }

  /** Everything read again: the previous keys are gone, and nothing is known about what changed. */
  replace(entries: Entries): void {
    this.dirs.clear();
    this.count = 0;
    for (const [key, value] of entries) this.insert(key, value);
    this.pending = undefined;
    this.version++;
  }

  set(key: string, value: string): void {
    this.version++;
    if (this.insert(key, value)) this.pending?.add(groupOf(key));
  }

  delete(key: string): void {
    this.version++;
    const group = groupOf(key);
    const groups = this.dirs.get(topDirOf(key));
    const keys = groups?.get(group);
    if (!keys?.delete(key)) return;
    this.count--;
    if (keys.size === 0) groups!.delete(group);
    if (groups!.size === 0) this.dirs.delete(topDirOf(key));
    this.pending?.add(group);
  }

  /** A v2 recursive delete (the platform unlinking a service): `dir` and everything under it. */
  deleteDir(dir: string): void {
    if (dir === '') {
      this.replace(new Map());
      return;
    }
    this.delete(dir);
    for (const key of this.under(`${dir}/`).keys()) this.delete(key);
  }

  get(key: string): string | undefined {
    return this.dirs.get(topDirOf(key))?.get(groupOf(key))?.get(key);
  }

  group(name: string): Map<string, string> {
    return new Map(this.dirs.get(topDirOf(name))?.get(name));
  }

  /**
   * The keys starting with `prefix`, from the one group it lies in, or from the groups of its
   * top-level directory it spans (`acme/`: every ACME directory; `services/`: every service,
   * which only a full pass would want).
   */
  under(prefix: string): Map<string, string> {
    const found = new Map<string, string>();
    const slash = prefix.indexOf('/');
    if (slash < 0) {
      for (const [key, value] of this.all()) if (key.startsWith(prefix)) found.set(key, value);
      return found;
    }
    const top = prefix.slice(0, slash);
    const groups = this.dirs.get(top);
    if (!groups) return found;
    const add = (keys: ReadonlyMap<string, string> | undefined) => {
      for (const [key, value] of keys ?? []) if (key.startsWith(prefix)) found.set(key, value);
    };
    if (!SPLIT_DIRS.has(top)) {
      add(groups.get(top));
    } else if (prefix.indexOf('/', slash + 1) >= 0) {
      add(groups.get(groupOf(prefix)));
    } else {
      for (const [name, keys] of groups) if (name.startsWith(prefix) || prefix.startsWith(name)) add(keys);
    }
    return found;
  }

  /** A copy of every key. */
  copy(): Map<string, string> {
    return new Map(this.all());
  }

  *all(): Generator<[string, string]> {
    for (const groups of this.dirs.values()) for (const keys of groups.values()) yield* keys;
  }

  /** Ends a batch of changes: a snapshot made now sees them, and changedSince reports their groups. */
  seal(revision: string): Snapshot {
    this.seq++;
    this.version++;
    const groups = this.pending && this.pending.size <= MAX_LOGGED_GROUPS ? this.pending : undefined;
    this.log.push({ seq: this.seq, groups });
    this.loggedGroups += groups?.size ?? 0;
    while (this.log.length > MAX_BATCHES || (this.loggedGroups > MAX_LOGGED_GROUPS && this.log.length > 1)) {
      this.loggedGroups -= this.log.shift()!.groups?.size ?? 0;
    }
    this.pending = new Set();
    return new StoreSnapshot(this, this.seq, this.version, revision);
  }

  /** @internal for StoreSnapshot */
  isCurrent(version: number): boolean {
    return version === this.version;
  }

  /** @internal for StoreSnapshot: the union of the batches after `from` up to `to`. */
  changedBetween(from: number, to: number): ReadonlySet<string> | undefined {
    if (from > to) return undefined;
    if (from === to) return new Set();
    const first = this.log[0];
    if (!first || first.seq > from + 1) return undefined;
    const union = new Set<string>();
    for (let i = from + 1 - first.seq; i < this.log.length && this.log[i]!.seq <= to; i++) {
      const groups = this.log[i]!.groups;
      if (!groups) return undefined;
      for (const group of groups) union.add(group);
    }
    return union;
  }

  /** Whether the key was new or its value changed. */
  private insert(key: string, value: string): boolean {
    const top = topDirOf(key);
    const group = groupOf(key);
    let groups = this.dirs.get(top);
    if (!groups) this.dirs.set(top, (groups = new Map()));
    let keys = groups.get(group);
    if (!keys) groups.set(group, (keys = new Map()));
    const before = keys.get(key);
    if (before === value) return false;
    if (before === undefined) this.count++;
    keys.set(key, value);
    return true;
  }
}

/**
 * A snapshot reading the store's live keys. Only the newest may be read: a read after the store
 * changed throws rather than answer with keys of another revision.
 */
class StoreSnapshot implements Snapshot {
  constructor(
    private readonly store: EntryStore,
    private readonly seq: number,
    private readonly version: number,
    readonly revision: string,
  ) {}

  get entries(): Entries {
    return new EntriesView(() => this.live());
  }

  get(key: string): string | undefined {
    return this.live().get(key);
  }

  group(name: string): Entries {
    return this.live().group(name);
  }

  under(dir: string): Entries {
    return this.live().under(dir);
  }

  changedSince(earlier: Snapshot | undefined): ReadonlySet<string> | undefined {
    if (!(earlier instanceof StoreSnapshot) || earlier.store !== this.store) return undefined;
    return this.store.changedBetween(earlier.seq, this.seq);
  }

  private live(): EntryStore {
    if (!this.store.isCurrent(this.version)) throw new Error(`etcd snapshot at revision ${this.revision} read after a newer one arrived`);
    return this.store;
  }
}

/**
 * Every key of a snapshot, read from the store (no copy of 40,000 keys for a full parse), and
 * like every other read only while the snapshot is the newest.
 */
class EntriesView implements ReadonlyMap<string, string> {
  constructor(private readonly live: () => EntryStore) {}

  get size(): number {
    return this.live().size;
  }

  get(key: string): string | undefined {
    return this.live().get(key);
  }

  has(key: string): boolean {
    return this.live().get(key) !== undefined;
  }

  forEach(callback: (value: string, key: string, map: ReadonlyMap<string, string>) => void): void {
    for (const [key, value] of this) callback(value, key, this);
  }

  *entries(): MapIterator<[string, string]> {
    const store = this.live();
    for (const entry of store.all()) {
      this.live();
      yield entry;
    }
  }

  *keys(): MapIterator<string> {
    for (const [key] of this.entries()) yield key;
  }

  *values(): MapIterator<string> {
    for (const [, value] of this.entries()) yield value;
  }

  [Symbol.iterator](): MapIterator<[string, string]> {
    return this.entries();
  }
}
