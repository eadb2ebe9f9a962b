import { open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';

/** A file could not be written; `code` is the system's (ENOSPC, EROFS, EACCES, ...). */
export class WriteError extends Error {
  constructor(readonly file: string, readonly code: string | undefined, cause: Error) {
    super(`cannot write ${file}: ${cause.message}`);
  }
}

/**
 * Writes a file so that readers see either the old content or the new, never a part:
 * a temp file in the same directory, fsync'd, renamed over the target, then the directory
 * fsync'd so the rename itself survives a crash (rename(2) alone is not durable).
 * On any failure the target is untouched and the temp file removed.
 */
export async function writeFileAtomic(file: string, data: string | Buffer, mode = 0o600): Promise<void> {
  const dir = path.dirname(file);
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  try {
    const handle = await open(temp, 'w', mode);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close().catch(() => undefined);
    }
    await rename(temp, file);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw new WriteError(file, (error as NodeJS.ErrnoException).code, error as Error);
  }
  await syncDirectory(dir);
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r').catch(() => undefined);
  if (!handle) return;
  try {
    await handle.sync();
  } catch {
    // Some filesystems refuse fsync on a directory (EINVAL); the rename has happened either way.
  } finally {
    await handle.close().catch(() => undefined);
  }
}
