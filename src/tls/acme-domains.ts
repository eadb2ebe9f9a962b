// config.ts reads KONTENA_LB_ACME_DOMAINS with this; ACME moved to src/acme/ (issue 14) and
// config.ts is being rewritten in another slice of that issue: it should import from there.
export { splitDomainList } from '../acme/domains.js';
