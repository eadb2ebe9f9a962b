import { execa } from 'execa';

/**
 * Disk faults for the state dir, made with mount(8): a root-only tool, but the only honest way
 * to get EROFS and ENOSPC (root ignores file modes, so chmod cannot make a directory read-only).
 */
export async function canMount(): Promise<boolean> {
  return process.getuid?.() === 0 && (await execa('mount', ['--version'], { reject: false })).exitCode === 0;
}

/** Makes `dir` read-only in place (a read-only bind mount over itself); `undo` makes it writable again. */
export async function makeReadOnly(dir: string): Promise<{ undo: () => Promise<void> }> {
  await execa('mount', ['--bind', dir, dir]);
  await execa('mount', ['-o', 'remount,bind,ro', dir]);
  let mounted = true;
  return {
    undo: async () => {
      if (!mounted) return;
      mounted = false;
      await execa('umount', [dir]);
    },
  };
}

/** Mounts a small tmpfs on `dir` (which must exist and be empty). */
export async function mountSmallDisk(dir: string, size = '1m'): Promise<{ unmount: () => Promise<void> }> {
  await execa('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir]);
  let mounted = true;
  return {
    unmount: async () => {
      if (!mounted) return;
      mounted = false;
      await execa('umount', ['-l', dir]);
    },
  };
}
