import { describe, expect, it } from 'vitest';
import { readTsig, requestMac, signMessage, type TsigKey, verifyResponse } from '../../src/acme/tsig.js';

// A real UPDATE signed by BIND's nsupdate (bind9-utils), captured on a UDP socket:
//   nsupdate -y hmac-sha256:edgelb-test-key:c2VjcmV0LXNlY3JldC1zZWNyZXQtMzItYnl0ZXMhISE=
//   zone example.test / update add _acme-challenge.example.test. 60 IN TXT "vector-value" / send
// Its MAC was computed by BIND's code, so it checks ours independently.
const NSUPDATE =
  '2d2128000001000000010001076578616d706c65047465737400000600010f5f61636d652d6368616c6c656e6765c00c001000010000003c000d0c766563746f722d76616c75650f656467656c622d746573742d6b65790000fa00ff00000000003d0b686d61632d7368613235360000006b0fb685012c00203cf71e0595e2505feba582c8cdd54070e5e60caae6a7196ed00581e71f50c61c2d2100000000';
const KEY: TsigKey = { name: 'edgelb-test-key', algorithm: 'hmac-sha256', secret: Buffer.from('c2VjcmV0LXNlY3JldC1zZWNyZXQtMzItYnl0ZXMhISE=', 'base64') };

describe('TSIG (RFC 8945)', () => {
  it("computes the MAC BIND's nsupdate computed, and encodes the same TSIG record", () => {
    const captured = Buffer.from(NSUPDATE, 'hex');
    const tsig = readTsig(captured)!;
    expect(tsig).toMatchObject({ algorithm: 'hmac-sha256', fudge: 300, error: 0, originalId: 0x2d21 });
    expect(requestMac(tsig.unsigned, KEY, tsig.timeSigned).toString('hex')).toBe(tsig.mac.toString('hex'));
    // Signing the unsigned message at the same time gives nsupdate's bytes exactly.
    expect(signMessage(tsig.unsigned, KEY, tsig.timeSigned).message.toString('hex')).toBe(NSUPDATE);
  });

  it('a wrong secret gives another MAC', () => {
    const tsig = readTsig(Buffer.from(NSUPDATE, 'hex'))!;
    const wrong = { ...KEY, secret: Buffer.from('another secret') };
    expect(requestMac(tsig.unsigned, wrong, tsig.timeSigned).equals(tsig.mac)).toBe(false);
  });

  it('verifies a signed answer, and refuses a tampered, late or unsigned one', () => {
    const time = 1_700_000_000;
    const request = signMessage(Buffer.from(NSUPDATE, 'hex').subarray(0, 12), KEY, time);
    // The server's answer: a bare header (QR, opcode UPDATE, NOERROR, no records) with the request's id.
    const answerHead = Buffer.alloc(12);
    request.message.copy(answerHead, 0, 0, 2);
    answerHead.writeUInt16BE(0xa800, 2);
    // Its MAC (§5.3) covers the request MAC (length-prefixed), the answer, then the variables:
    // requestMac over the prefixed answer is exactly that; put it in a TSIG record of the answer.
    const macLength = Buffer.alloc(2);
    macLength.writeUInt16BE(request.mac.length);
    const serverMac = requestMac(Buffer.concat([macLength, request.mac, answerHead]), KEY, time);
    const signed = Buffer.from(signMessage(answerHead, KEY, time).message);
    serverMac.copy(signed, signed.length - 6 - serverMac.length);

    expect(verifyResponse(signed, KEY, request.mac, time)).toBeUndefined();
    expect(verifyResponse(signed, KEY, request.mac, time + 301)).toMatch(/BADTIME/);
    expect(verifyResponse(signed, { ...KEY, secret: Buffer.from('wrong') }, request.mac, time)).toMatch(/does not match/);
    const tampered = Buffer.from(signed);
    tampered.writeUInt16BE(0xa803, 2); // NXDOMAIN instead
    expect(verifyResponse(tampered, KEY, request.mac, time)).toMatch(/does not match/);
    expect(verifyResponse(answerHead, KEY, request.mac, time)).toMatch(/not signed/);
  });
});
