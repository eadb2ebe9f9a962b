import type { Command } from 'commander';
import { SETTINGS, type Config } from '../config.js';
import { addSettingFlags as addFlags } from '../settings/flags.js';
import type { Entries } from '../model/types.js';
import { EntriesFileError, readEntriesFile } from './entries-file.js';
import { withStore } from './etcd-access.js';
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
  /** The environment (SSL_CERTS, ACME_CHALLENGE_*), read by main.ts: check and render see the certificates run would serve. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** PATH to look for haproxy in (`edgelb check`). */
  readonly searchPath: string;
  readonly etcdTimeoutMs?: number;
}

/** Every `edgelb run` setting as a flag, so a dry run renders exactly what `run` would. */
export function addSettingFlags(command: Command): void {
  addFlags(command, SETTINGS);
}

/** The flags `render` and `check` share: where the entries come from, and every `run` setting. */
export function addEntrySourceFlags(command: Command): Command {
  command.option('--from-file <file>', 'read the entries from a YAML or JSON file instead of etcd');
  addSettingFlags(command);
  return command;
}

export interface EntrySource {
  readonly entries: Entries;
  /** `etcd http://...:2379 /kontena/haproxy/lb at revision 42` or the file name. */
  readonly description: string;
}

/** Reads the entries once: from the file when given, else one range read of etcd (no watch). */
export async function readEntries(config: Config, fromFile: string | undefined, deps: CliDeps): Promise<EntrySource> {
  if (fromFile !== undefined) {
    const entries = await deps.progress.step(
      `reading ${fromFile}`,
      () =>
        readEntriesFile(fromFile, config.etcdPath).catch((error: unknown) => {
          if (error instanceof EntriesFileError) deps.fail(error.message, 2);
          throw error;
        }),
      (e) => `${count(e.size)} keys`,
    );
    return { entries, description: fromFile };
  }
  const endpoints = config.etcd.endpoints.join(',');
  return deps.progress.step(
    `reading ${config.etcdPath}/ from etcd`,
    () =>
      withStore(
        config.etcd,
        {
          prefix: config.etcdPath,
          forWriting: false,
          timeoutMs: deps.etcdTimeoutMs ?? 10_000,
          fail: (message) => deps.fail(message),
          hint: 'check ETCD_ENDPOINTS, or use --from-file',
        },
        async (store) => {
          const listed = await store.list(config.etcdPath);
          return { entries: listed.entries, description: `etcd ${endpoints} (${store.api}) ${config.etcdPath}/ at revision ${listed.revision}` };
        },
      ),
    (source) => `${count(source.entries.size)} keys`,
  );
}
