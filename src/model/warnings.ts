import { bcryptWarning } from './basic-auth.js';
import { compare } from './parse.js';
import { changedServices, findService } from './state-changes.js';
import type { DesiredState, EntryWarning, HttpService } from './types.js';

/**
 * Entries that are served as written but cost the operator something they should know about.
 * Pure, from the parsed state: `run` logs each once (`entry warning`), `check` and `/status` list them.
 */
export function entryWarnings(state: DesiredState): EntryWarning[] {
  return state.http.flatMap((service) => warningOf(service) ?? []);
}

function warningOf(service: HttpService): EntryWarning | undefined {
  const reason = bcryptWarning(service.basicAuth);
  return reason === undefined ? undefined : { key: `services/${service.name}/basic_auth_secrets`, reason };
}

/**
 * entryWarnings of state after state, looking only at the services that changed since the
 * previous one (changedServices); the same array while nothing in it changes.
 */
export class EntryWarnings {
  private state: DesiredState | undefined;
  private readonly byService = new Map<string, EntryWarning>();
  private list: readonly EntryWarning[] = [];

  update(state: DesiredState): readonly EntryWarning[] {
    let changed = false;
    for (const key of changedServices(this.state, state)) {
      if (!key.startsWith('http:')) continue;
      const name = key.slice('http:'.length);
      const service = findService(state, key) as HttpService | undefined;
      const warning = service && warningOf(service);
      if (warning) this.byService.set(name, warning);
      if (warning || this.byService.delete(name)) changed = true;
    }
    this.state = state;
    if (changed) this.list = [...this.byService].sort(([a], [b]) => compare(a, b)).map(([, warning]) => warning);
    return this.list;
  }
}
