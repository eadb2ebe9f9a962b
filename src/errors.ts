/**
 * The error catalog: a stable code for every failure edgelb decides on. Retries, exit codes,
 * metric labels and tests switch on the code, never on words in a message: messages stay free to
 * change, and a reworded one cannot silently change what the code does. The failure underneath
 * (a Node system error, HAProxy's answer) travels as `cause`, so its stack and `code` survive.
 *
 * Failures talking to etcd have their own codes (`EtcdFailureCode` in etcd/errors.ts), and a
 * rejected entry its `RejectionCode` (model/types.ts).
 */
export type ErrorCode =
  /** An HAProxy CLI socket (master CLI or runtime API) could not be connected to, or failed. */
  | 'haproxy_socket_unreachable'
  /** An HAProxy CLI socket did not answer within the timeout. */
  | 'haproxy_socket_timeout'
  /** HAProxy exited while starting; its last alerts are in the message. */
  | 'haproxy_start_failed'
  /** HAProxy did not report a worker within the start timeout. */
  | 'haproxy_start_timeout'
  /** A reload was asked of an HAProxy that does not run. */
  | 'haproxy_not_running'
  /** The master counted a failed reload: the new config did not load, the old workers serve on. */
  | 'haproxy_reload_refused'
  /** No new worker appeared within the reload timeout. */
  | 'haproxy_reload_timeout'
  /** haproxy -c refused the rendered config for reasons no single service explains (settings). */
  | 'haproxy_config_rejected'
  /** HAProxy answered something edgelb cannot read (no `show stat` header: an error text). */
  | 'haproxy_answer_unreadable'
  /** An HTTP endpoint (HAProxy's exporter, edgelb's admin port) answered with a status other than 200. */
  | 'http_status'
  /** An HTTP endpoint did not answer within the timeout. */
  | 'http_timeout'
  /** An HTTP endpoint could not be connected to (the Node error's code is the message). */
  | 'http_unreachable';

/**
 * A failure with a stable code from a catalog (`C`); the message is one line for people and logs,
 * never a secret. Each area has its catalog: ErrorCode here, EtcdFailureCode, AcmeErrorCode.
 */
export class CodedError<C extends string> extends Error {
  constructor(
    readonly code: C,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A failure of edgelb's own (HAProxy, the admin port, the config) with a code of ErrorCode. */
export class EdgelbError extends CodedError<ErrorCode> {}

/**
 * The Node system error codes (`ENOSPC`, `EACCES`, ...) on `error` and along its `cause` chain,
 * outermost first: a wrapper keeps the system's code on its cause.
 */
export function systemCodesOf(error: unknown): string[] {
  const codes: string[] = [];
  for (let at = error, depth = 0; at instanceof Error && depth < 8; at = at.cause, depth++) {
    const code = (at as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && !(at instanceof CodedError)) codes.push(code);
  }
  return codes;
}
