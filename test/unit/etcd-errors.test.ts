import { describe, expect, it } from 'vitest';
import { describeTls, looksLikeTls } from '../../src/etcd/errors.js';
import { failureOf, type V2Response } from '../../src/etcd/v2-http.js';
import { classifyV3 } from '../../src/etcd/v3-store.js';

// TLS failures as the operator reads them: which side refused, which setting to look at. The
// inputs are what Node (v2 over https) and gRPC (v3) reported against etcd 3.4 in
// test/integration/etcd-secured.test.ts.

const GRPC_BAD_CERT =
  '14 UNAVAILABLE: No connection established. Last error: 803CE42F967F0000:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number 42';
const NODE_BAD_CERT =
  '802C2B7CBF7F0000:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number 42\n';
const GRPC_UNVERIFIED = '14 UNAVAILABLE: No connection established. Last error: Error: unable to verify the first certificate. Resolution note: ';

describe('describeTls', () => {
  it.each([
    [
      'gRPC: etcd refused the client certificate',
      GRPC_BAD_CERT,
      '',
      /^etcd refused edgelb's client certificate, or its lack of one \(ETCD_CERT_FILE and ETCD_KEY_FILE .*\): 14 UNAVAILABLE: No connection established\. Last error: sslv3 alert bad certificate, SSL alert number 42$/,
    ],
    [
      'Node: etcd refused the client certificate',
      NODE_BAD_CERT,
      'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
      /^etcd refused edgelb's client certificate.*: sslv3 alert bad certificate, SSL alert number 42$/,
    ],
    [
      'gRPC: the server certificate is not trusted',
      GRPC_UNVERIFIED,
      '',
      /^edgelb does not trust the etcd server's certificate \(ETCD_CA_FILE .*\): 14 UNAVAILABLE: No connection established\. Last error: Error: unable to verify the first certificate$/,
    ],
    [
      'Node: the server certificate is not trusted',
      'unable to verify the first certificate',
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      /^edgelb does not trust the etcd server's certificate.*: unable to verify the first certificate$/,
    ],
    [
      'Node: a self-signed server certificate',
      'self-signed certificate',
      'DEPTH_ZERO_SELF_SIGNED_CERT',
      /^edgelb does not trust the etcd server's certificate/,
    ],
    [
      'Node: the name does not match',
      "Hostname/IP does not match certificate's altnames: IP: 10.0.0.1 is not in the cert's list: ",
      'ERR_TLS_CERT_ALTNAME_INVALID',
      /^edgelb does not trust the etcd server's certificate/,
    ],
    [
      'OpenSSL 3 without a function name',
      '40E7:error:0A000412:SSL routines::sslv3 alert bad certificate',
      '',
      /client certificate.*: sslv3 alert bad certificate$/,
    ],
    ['anything else stays as it was', 'wrong version number', '', /^wrong version number$/],
  ])('%s', (_, message, code, expected) => {
    expect(describeTls(message, code)).toMatch(expected);
  });

  it('never keeps more than the first line', () => {
    expect(describeTls('unable to verify the first certificate\n    at TLSSocket.onConnectSecure')).not.toMatch(/\n|onConnectSecure/);
  });
});

describe('classifyV3 of TLS failures', () => {
  it('is "tls" with the described cause', () => {
    const failure = classifyV3(new Error(GRPC_BAD_CERT));
    expect(failure.code).toBe('tls');
    expect(failure.message).toMatch(/^etcd refused edgelb's client certificate/);
  });

  it('a refused connection is not TLS', () => {
    expect(looksLikeTls('14 UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED 127.0.0.1:2379')).toBe(false);
    expect(classifyV3(new Error('14 UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED 127.0.0.1:2379')).code).toBe('unreachable');
  });
});

describe('failureOf a v2 401', () => {
  const refused = (anonymous: boolean): V2Response => ({
    status: 401,
    index: undefined,
    anonymous,
    body: { errorCode: 110, message: 'The request requires user authentication' },
  });

  it('with a user: a wrong password and a key outside its roles look alike to etcd, so both are named', () => {
    const failure = failureOf(refused(false), 'reading /lb');
    expect(failure.code).toBe('auth');
    expect(failure.message).toBe(
      "reading /lb: The request requires user authentication (wrong user name or password, or the user's role does not cover this key)",
    );
  });

  it('without one: says ETCD_USERNAME is not set, and what etcd takes instead under client certificates', () => {
    const failure = failureOf(refused(true), 'reading /lb');
    expect(failure.code).toBe('auth');
    expect(failure.message).toMatch(/no ETCD_USERNAME is set.*common name/);
    expect(failure.message).not.toMatch(/wrong user name or password/);
  });
});
