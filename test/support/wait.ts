export { waitFor, sleep } from '../../scripts/lib/poll.js';
