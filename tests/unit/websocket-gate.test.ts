import { PassThrough } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { checkUpgrade, refuseUpgrade } from '../../src/http/websocket-gate.js';

const GATE = { path: '/graphql', allowedOrigins: [] as string[], publicOrigin: null };

function legacyClientRequest() {
  return { url: '/graphql', headers: { host: 'localhost:4000', 'sec-websocket-protocol': 'graphql-ws' } };
}

describe('a WebSocket client offering only the legacy graphql-ws subprotocol', () => {
  it('is refused before the upgrade with a 400 naming the subprotocol to offer', () => {
    const refusal = checkUpgrade(legacyClientRequest(), GATE);
    expect(refusal?.status).toBe(400);
    expect(refusal?.reason).toContain('Offer the graphql-transport-ws subprotocol');
    expect(refusal?.reason).toContain('graphql-ws offered');
  });

  it('gets a plain HTTP answer with the reason, and a warning in the structured log naming what it offered', async () => {
    const lines: Record<string, unknown>[] = [];
    const logStream = new PassThrough();
    logStream.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
    });
    const logger = pino({ level: 'info' }, logStream);
    const socket = new PassThrough();
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    const request = legacyClientRequest();
    const refusal = checkUpgrade(request, GATE);
    expect(refusal).not.toBeNull();
    refuseUpgrade(socket, refusal!, request as never, logger);
    await expect.poll(() => lines.length, { message: 'the refusal is logged' }).toBe(1);
    expect(lines[0]).toMatchObject({ level: 40, status: 400, protocols: 'graphql-ws' });
    expect(String(lines[0].msg)).toContain('WebSocket refused: Offer the graphql-transport-ws subprotocol');
    expect(answer).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(answer).toContain('"message":"Offer the graphql-transport-ws subprotocol');
  });
});
