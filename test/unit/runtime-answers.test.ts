import { describe, expect, it } from 'vitest';
import { refusalIn, SERVER_GONE } from '../../src/haproxy/runtime-answers.js';

// HAProxy 2.6's answers to the commands edgelb sends (management guide, section 9.3, and what
// HAProxy printed in the integration tests): each a success or a refusal, one classifier for all.

describe('refusalIn', () => {
  it.each([
    '',
    '\n',
    'New server registered.\n',
    'Server deleted.\n',
    "IP changed from '10.0.0.1' to '10.0.0.2', no need to change the port by 'stats socket command'\n",
    "no need to change the addr, port changed from '18083' to '18082' by 'stats socket command'\n",
    "New empty certificate store '/var/lib/edgelb/certs/error.example.com.pem'!\n",
    'Transaction created for certificate /var/lib/edgelb/certs/invalid-cannot-fail.example.com.pem!\n',
    'Committing /var/lib/edgelb/certs/unknown.example.com.pem\nSuccess!\n',
    "Inserting certificate '/var/lib/edgelb/certs/failed.example.com.pem' in crt-list '/var/lib/edgelb/crt-list'.\nSuccess!\n",
    "Entry '/var/lib/edgelb/certs/a.pem' deleted in crtlist '/var/lib/edgelb/crt-list'!\n",
  ])('a success: %j', (answer) => {
    expect(refusalIn(answer)).toBeUndefined();
  });

  it.each([
    'No such server.\n',
    'No such backend.\n',
    "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n\n",
    'Absolute weight can only be between 0 and 256 inclusive.\n\n',
    'Already exists a server with the same name in backend.\n',
    'Backend must use a dynamic load balancing to support dynamic servers.\n',
    'Only servers in maintenance mode can be deleted.\n',
    'Server still has connections attached to it, cannot remove it.\n',
    "Require 'backend/server'.\n",
    "'set server <srv> health' expects 'up', 'stopping', or 'down'.\nInvalid argument\n",
    "Can't update /var/lib/edgelb/certs/a.pem!\nunable to load certificate\n",
    'No ongoing transaction! !\n',
    "Unknown map identifier 'x'. Please use #<id> or <file>.\n",
    'Permission denied\n',
    "'server' : unknown keyword 'frobnicate'.\n",
    "Can't remove the certificate: certificate '/var/lib/edgelb/certs/a.pem' in use, can't be deleted!\n",
    "Can't delete the entry: certificate '/var/lib/edgelb/certs/a.pem' does not exist!\n",
    "certificate '/var/lib/edgelb/certs/a.pem' doesn't exist!\n",
  ])('a refusal: %j', (answer) => {
    expect(refusalIn(answer)).toBe(answer.trim().replace(/\s+/g, ' '));
  });
});

describe('SERVER_GONE', () => {
  it('knows a deleted server from a busy one', () => {
    expect(SERVER_GONE.test('Server deleted.\n')).toBe(true);
    expect(SERVER_GONE.test('No such server.\n')).toBe(true);
    expect(SERVER_GONE.test('Server still has connections attached to it, cannot remove it.\n')).toBe(false);
  });
});
