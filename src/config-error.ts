/** A setting that cannot work; the message is the one line the operator sees (main.ts exits 2). */
export class ConfigError extends Error {}
