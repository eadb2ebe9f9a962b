import { Option, type Command } from 'commander';
import { Etcd3 } from 'etcd3';
import { SETTINGS, type Config } from '../config.js';
import type { Entries } from '../model/types.js';
import { EntriesFileError, readEntriesFile } from './entries-file.js';
import { count, type Progress } from './progress.js';

/** What main.ts hands the render, check and status commands: it alone reads process.env and exits. */
export interface CliDeps {
  /**
   * The validated settings, from the environment with the command's flags applied (the same
   * table as `edgelb run`). `needsEtcd: false` (a --from-file run) does not ask for the load
   * balancer's name. Never returns on a bad setting: main.ts prints it and exits 2.
   */
  readonly loadConfig: (flags: Readonly<Record<string, unknown>>, options: { needsEtcd: boolean }) => Config;
  /** stdout, as given (a config ends with its own newline). */
  readonly out: (text: string) => void;
  /** One line to stderr. */
  readonly warn: (line: string) => void;
  readonly progress: Progress;
  /** Prints `edgelb: <message>` and exits with `code` (1: problems found or a request failed; 2: unusable settings). */
  readonly fail: (message: string, code?: number) => never;
  /** Sets the exit status for when the command returns (check: 1 when it found problems). */
  readonly exitCode: (code: number) => void;
  /** PATH to look for haproxy in (`edgelb check`). */
  readonly searchPath: string;
  readonly etcdTimeoutMs?: number;
}

/** Every `edgelb run` setting as a flag, so a dry run renders exactly what `run` would. */
export function addSettingFlags(command: Command): void {
  for (const setting of SETTINGS) {
    const option = new Option(`--${setting.flag} <value>`, `${setting.help} [env ${setting.env}]`);
    command.addOption('default' in setting ? option.default(undefined, setting.default) : option);
  }
}

export interface EntrySource {
  readonly entries: Entries;
  /** `etcd http://...:2379 /kontena/haproxy/lb at revision 42` or the file name. */
  readonly description: string;
}

/** Reads the entries once: from the file when given, else one range read of etcd (no watch). */
export async function readEntries(config: Config, fromFile: string | undefined, deps: CliDeps): Promise<EntrySource> {
  if (fromFile !== undefined) {
    const entries = await deps.progress.step(`reading ${fromFile}`, () => readEntriesFile(fromFile, config.etcdPath).catch((error: unknown) => {
      if (error instanceof EntriesFileError) deps.fail(error.message, 2);
      throw error;
    }), (e) => `${count(e.size)} keys`);
    return { entries, description: fromFile };
  }
  const endpoints = config.etcdEndpoints.join(',');
  const client = new Etcd3({ hosts: [...config.etcdEndpoints], dialTimeout: 3000 });
  const timeoutMs = deps.etcdTimeoutMs ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await deps.progress.step(`reading ${config.etcdPath}/ from etcd`, async () => {
      const listed = await Promise.race([
        client.getAll().prefix(`${config.etcdPath}/`).exec(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
        }),
      ]);
      const start = config.etcdPath.length + 1;
      const entries = new Map((listed.kvs ?? []).map((kv) => [kv.key.toString('utf8').slice(start), kv.value.toString('utf8')]));
      return { entries, description: `etcd ${endpoints} ${config.etcdPath}/ at revision ${listed.header.revision}` };
    }, (source) => `${count(source.entries.size)} keys`);
  } catch (error) {
    const message = (error as Error).message.split('\n')[0]!.replace(/\s*Resolution note:.*$/, '').trim();
    deps.fail(`cannot read from etcd at ${endpoints}: ${message} (check ETCD_ENDPOINTS, or use --from-file)`);
  } finally {
    clearTimeout(timer);
    client.close();
  }
}
