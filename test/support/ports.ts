export { freePort } from '../../scripts/lib/poll.js';
