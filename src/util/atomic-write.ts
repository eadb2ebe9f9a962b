import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

/** A file could not be written; `code` is the system's (ENOSPC, EROFS, EACCES, ...). */
export class WriteError extends Error {
  constructor(
    readonly file: string,
    readonly code: string | undefined,
    cause: Error,
  ) {
    super(`cannot write ${file}: ${cause.message}`, { cause });
  }
}

/**
 * Writes a file so that readers see either the old content or the new, never a part:
 * a temp file in the same directory, fsync'd, renamed over the target, then the directory
 * fsync'd so the rename itself survives a crash (rename(2) alone is not durable).
 * On any failure the target is untouched and the temp file removed.
 */
export async function writeFileAtomic(file: string, data: string | Buffer | Iterable<string>, mode = 0o600): Promise<void> {
  const dir = path.dirname(file);
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  try {
    const handle = await open(temp, 'w', mode);
    try {
      if (typeof data === 'string' || Buffer.isBuffer(data)) await handle.writeFile(data);
      else await writePieces(handle, data);
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

/**
 * Pieces are written in batches of about 64 KiB: no string of the whole file, and the event loop
 * runs between batches. Below V8's large-object size (128 KiB), a batch dies young in the new
 * space instead of filling the old one. writeFile on a handle writes from the current position, all of it.
 */
async function writePieces(handle: FileHandle, pieces: Iterable<string>): Promise<void> {
  let batch: string[] = [];
  let length = 0;
  for (const piece of pieces) {
    batch.push(piece);
    length += piece.length;
    if (length >= BATCH_CHARS) {
      await handle.writeFile(batch.join(''));
      batch = [];
      length = 0;
    }
  }
  if (batch.length > 0) await handle.writeFile(batch.join(''));
}

const BATCH_CHARS = 64 * 1024;

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
