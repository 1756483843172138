import { Worker } from 'node:worker_threads';
import { TresorError } from '@tresor/protocol';

interface Pending {
  resolve(answer: unknown): void;
  reject(error: unknown): void;
}

/**
 * A worker thread, evaluated from `source`, that answers every message in the order it was sent,
 * so each request takes the next answer. The model-file passes run SHA-256 and AES-GCM on such
 * threads over shared memory. `interpret` turns an answer into the request's value, or throws to
 * refuse it; the first failure — a refused answer, the thread failing or exiting, `close()` —
 * stays the answer to that request and to every one after it, including those already sent, so
 * nothing after a failure is ever taken for done.
 */
export class OrderedWorker {
  readonly #worker: Worker;
  readonly #pending: Pending[] = [];
  readonly #name: string;
  #failure: TresorError | undefined;
  #closed = false;

  /** `name` says which worker in errors ("the SHA-256 worker …"). */
  constructor(source: string, name: string, interpret: (answer: unknown) => unknown = (answer) => answer) {
    this.#name = name;
    this.#worker = new Worker(source, { eval: true });
    this.#worker.on('message', (answer: unknown) => {
      const request = this.#pending.shift();
      if (this.#failure !== undefined) {
        request?.reject(this.#failure);
        return;
      }
      let value: unknown;
      try {
        value = interpret(answer);
      } catch (error) {
        this.#failure ??=
          error instanceof TresorError
            ? error
            : new TresorError('INTERNAL_ERROR', `the ${name} refused a request`, { cause: error });
        request?.reject(this.#failure);
        return;
      }
      request?.resolve(value);
    });
    this.#worker.on('error', (error) => {
      this.#fail(error);
    });
    this.#worker.on('exit', (code) => {
      if (!this.#closed) this.#fail(new Error(`the thread exited with code ${String(code)}`));
    });
  }

  /** Sends a message that gets no answer (set-up, such as a key). */
  tell(message: unknown): void {
    this.#worker.postMessage(message);
  }

  /** Sends `message` and resolves with its interpreted answer. */
  ask(message: unknown): Promise<unknown> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (this.#closed) return Promise.reject(new TresorError('INTERNAL_ERROR', `the ${this.#name} is closed`));
    const answer = new Promise<unknown>((resolve, reject) => {
      this.#pending.push({ resolve, reject });
    });
    this.#worker.postMessage(message);
    return answer;
  }

  /** Stops the thread (and with it whatever it held); safe to call more than once. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#worker.terminate();
    this.#fail(new Error('the thread was stopped'));
  }

  #fail(cause: unknown): void {
    this.#failure ??= new TresorError('INTERNAL_ERROR', `the ${this.#name} thread failed`, { cause });
    for (const request of this.#pending.splice(0)) request.reject(this.#failure);
  }
}
