/**
 * The stable names of the controller's log lines, in each line's `event` field: log pipelines
 * and alerts key on these, so a reworded message changes nothing for them.
 */
export type ControllerEvent =
  | 'apply.unchanged'
  | 'apply.runtime'
  | 'apply.reloaded'
  | 'apply.started'
  | 'apply.failed'
  | 'apply.runtime_refused'
  | 'entry.rejected'
  | 'entry.warning'
  | 'certificate.rejected'
  | 'certificate.warning'
  | 'certificate.attention'
  | 'service.excluded'
  | 'routes.consumer_failed'
  | 'last_good.started'
  | 'last_good.failed';

/** The `event` field of a log line. */
export const event = (name: ControllerEvent) => ({ event: name });
