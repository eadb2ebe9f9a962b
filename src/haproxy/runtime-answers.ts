/**
 * What HAProxy's runtime API answers mean, in one place for every command edgelb sends (server,
 * certificate, crt-list and map commands; management guide 2.6, section 9.3). A success is an
 * empty answer or a statement ("New server registered.", "Server deleted.", "IP changed from ...",
 * "Transaction created for certificate ...!", "Success!"); a refusal says what is wrong.
 */
const REFUSAL = new RegExp(
  [
    'no such',
    'not found',
    "doesn't exist",
    'unknown',
    'no ongoing', // what it names is not there
    'already',
    'must',
    'only servers',
    'require',
    'invalid',
    'not accepted', // what was asked is not allowed
    'only accepts', // `set server ... weight` in a static-algorithm backend: 0% or 100% only
    'can only be', // `set server ... weight` out of 0–256
    "can't",
    'cannot',
    'not (?:allowed|supported)',
    'permission denied',
    'denied',
    'error',
    'failed',
  ].join('|'),
  'i',
);

/** `del server` answers of a server that is gone (deleted now, or before). */
export const SERVER_GONE = /Server deleted|No such (?:server|backend)/i;

/**
 * The refusal in an answer, as one line, or undefined for a success. What HAProxy echoes back
 * (quoted names, file paths) is edgelb's own and may hold any word (a certificate for
 * `error.example.com`), so it is left out of the test.
 */
export function refusalIn(answer: string): string | undefined {
  // A quote inside a word ("Can't") opens no quoted name.
  const ownLeftOut = answer.replace(/(^|[^\w'])'[^'\n]*'(?!\w)/g, "$1''").replace(/(^|[\s(])\/\S+/g, '$1/');
  return REFUSAL.test(ownLeftOut) ? answer.trim().replace(/\s+/g, ' ') : undefined;
}
