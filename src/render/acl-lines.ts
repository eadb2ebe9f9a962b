/**
 * HAProxy reads at most 64 words on a config line (MAX_LINE_ARGS) and silently drops the rest
 * with an alert, so a long list of patterns (hosts, addresses, origins) is split over several
 * lines of the same ACL: lines with one ACL name are ORed (configuration manual, 7.2 "Using ACLs
 * to form conditions").
 */
const WORDS_PER_ACL_LINE = 50;

/** The list in pieces of at most WORDS_PER_ACL_LINE: one ACL line each. */
export function aclLineChunks(list: readonly string[]): string[][] {
  const parts: string[][] = [];
  for (let i = 0; i < list.length; i += WORDS_PER_ACL_LINE) parts.push(list.slice(i, i + WORDS_PER_ACL_LINE));
  return parts;
}
