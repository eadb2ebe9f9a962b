import { bcryptWarning } from './basic-auth.js';
import type { DesiredState, EntryWarning } from './types.js';

/**
 * Entries that are served as written but cost the operator something they should know about.
 * Pure, from the parsed state: `run` logs each once (`entry warning`), `check` and `/status` list them.
 */
export function entryWarnings(state: DesiredState): EntryWarning[] {
  const warnings: EntryWarning[] = [];
  for (const service of state.http) {
    const reason = bcryptWarning(service.basicAuth);
    if (reason !== undefined) warnings.push({ key: `services/${service.name}/basic_auth_secrets`, reason });
  }
  return warnings;
}
