import { execa } from 'execa';

/**
 * A network namespace standing in for a container on a Kontena node: its own loopback and ports,
 * one veth link to this host, and a default route through the host's end of it, which is where
 * a container finds the node's etcd. Needs root and iproute2; `canCreate` says whether it works here.
 */
export interface ContainerNetwork {
  readonly name: string;
  /** The host's address on the link: the container's default gateway. */
  readonly gateway: string;
  /** The container's address on the link. */
  readonly address: string;
  /** The argv prefix that runs a command inside the namespace. */
  readonly exec: readonly string[];
  remove(): Promise<void>;
}

async function ip(...args: string[]): Promise<void> {
  await execa('ip', args);
}

/** Whether this machine lets the tests make namespaces (root, iproute2, netns support). */
export async function canCreateNetns(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'not root';
  const probe = `edgelb-probe-${process.pid}`;
  try {
    await ip('netns', 'add', probe);
    await ip('netns', 'del', probe);
    return undefined;
  } catch (error) {
    return `ip netns does not work here: ${(error as Error).message.split('\n')[0]}`;
  }
}

/** A namespace with a /30 link to the host in 10.231.0.0/16 (chosen from the pid, so parallel runs differ). */
export async function createContainerNetwork(tag: string): Promise<ContainerNetwork> {
  const id = process.pid % 16_000;
  const name = `edgelb-${tag}-${process.pid}`;
  const hostIf = `eh${id}${tag.slice(0, 4)}`.slice(0, 15);
  const nsIf = `ec${id}${tag.slice(0, 4)}`.slice(0, 15);
  const net = `10.231.${Math.floor(id / 64)}`;
  const first = (id % 64) * 4;
  const gateway = `${net}.${first + 1}`;
  const address = `${net}.${first + 2}`;
  const inside = (...args: string[]) => ip('netns', 'exec', name, 'ip', ...args);
  await ip('netns', 'add', name);
  try {
    await ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf);
    await ip('link', 'set', nsIf, 'netns', name);
    await ip('addr', 'add', `${gateway}/30`, 'dev', hostIf);
    await ip('link', 'set', hostIf, 'up');
    await inside('addr', 'add', `${address}/30`, 'dev', nsIf);
    await inside('link', 'set', nsIf, 'up');
    await inside('link', 'set', 'lo', 'up');
    await inside('route', 'add', 'default', 'via', gateway);
  } catch (error) {
    await ip('netns', 'del', name).catch(() => undefined);
    await ip('link', 'del', hostIf).catch(() => undefined);
    throw error;
  }
  return {
    name,
    gateway,
    address,
    exec: ['ip', 'netns', 'exec', name],
    // Deleting the namespace deletes its end of the veth pair, and with it the host's end.
    remove: () => ip('netns', 'del', name).catch(() => undefined),
  };
}
