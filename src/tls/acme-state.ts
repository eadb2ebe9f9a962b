// config.ts takes its default directory from here; ACME moved to src/acme/ (issue 14) and
// config.ts is being rewritten in another slice of that issue: it should import from there.
export { LETS_ENCRYPT_PRODUCTION } from '../acme/issuer.js';
