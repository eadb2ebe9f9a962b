import { EntryError } from './values.js';

/**
 * Validators of issue 15's per-instance and backend keys (weights, timeouts, retries, the
 * protocol to the instances). As in values.ts, whatever passes is rendered into a config line
 * or a runtime API command, so each returns a value built from a fixed vocabulary or digits.
 */

/** HAProxy's server weight range (configuration manual 5.2, "weight <weight>": 0 to 256). */
export const WEIGHT_MAX = 256;

/** `weights/<instance>`: an integer 0–256. */
export function parseWeight(raw: string, key = 'weight'): number {
  const text = raw.trim();
  if (!/^[0-9]{1,3}$/.test(text) || Number(text) > WEIGHT_MAX)
    throw new EntryError(`${key} ${JSON.stringify(raw)} is not a whole number from 0 to ${WEIGHT_MAX}`);
  return Number(text);
}
