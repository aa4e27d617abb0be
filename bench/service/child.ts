import type http from 'node:http';

/**
 * What the service benchmark's own server processes share (the BullMQ anchor, the floor): their
 * environment, a JSON log line the benchmark reads for readiness, a JSON answer, a request body,
 * and the work of a job (the file's lines counted).
 */

export const env = (name: string): string => {
  const v = process.env[name];
  if (v === undefined || v === '') { throw new Error(`${name} is not set`); }
  return v;
};

export const log = (msg: string, fields: object = {}) => process.stdout.write(`${JSON.stringify({ time: Date.now(), msg, ...fields })}\n`);

export function send(res: http.ServerResponse, status: number, body: object): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}

export async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) { chunks.push(c as Buffer); }
  return Buffer.concat(chunks).toString('utf8');
}

export function countLines(buf: Buffer): number {
  let n = 0;
  for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, i + 1)) { n++; }
  return n;
}
