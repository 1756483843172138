import { afterEach, describe, expect, it } from 'vitest';
import { TresorError } from '@tresor/protocol';
import { OrderedWorker } from './ordered-worker.js';

/** Echoes each message; `-1` is answered with a refusal, `'exit'` ends the thread. */
const ECHO = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', (m) => {
  if (m === 'exit') process.exit(3);
  parentPort.postMessage(m === -1 ? { refused: true } : m);
});
`;

const interpret = (answer: unknown): unknown => {
  if (typeof answer === 'object' && answer !== null)
    throw new TresorError('SEALED_MODEL_TAMPERED', 'refused');
  return answer;
};

describe('OrderedWorker', () => {
  let worker: OrderedWorker | undefined;
  afterEach(async () => {
    await worker?.close();
  });

  it('answers each request with its own answer, in order', async () => {
    worker = new OrderedWorker(ECHO, 'echo worker', interpret);
    expect(await Promise.all([1, 2, 3].map((n) => worker!.ask(n)))).toEqual([1, 2, 3]);
  });

  it('keeps the first refusal as the answer to every later request', async () => {
    worker = new OrderedWorker(ECHO, 'echo worker', interpret);
    const answers = await Promise.allSettled([worker.ask(1), worker.ask(-1), worker.ask(2)]);
    expect(answers.map((a) => a.status)).toEqual(['fulfilled', 'rejected', 'rejected']);
    await expect(worker.ask(3)).rejects.toMatchObject({ code: 'SEALED_MODEL_TAMPERED' });
  });

  it('fails every request once the thread exits on its own', async () => {
    worker = new OrderedWorker(ECHO, 'echo worker', interpret);
    await expect(worker.ask('exit')).rejects.toMatchObject({ code: 'INTERNAL_ERROR' });
    await expect(worker.ask(1)).rejects.toThrow('echo worker thread failed');
  });

  it('refuses requests after close, which may be called twice', async () => {
    worker = new OrderedWorker(ECHO, 'echo worker', interpret);
    await worker.close();
    await worker.close();
    await expect(worker.ask(1)).rejects.toMatchObject({ code: 'INTERNAL_ERROR' });
  });
});
