/** A setting that cannot work; the message is the one line the operator sees. */
export class ConfigError extends Error {}
