/**
 * Runs async tasks one at a time, in call order. The SQLite driver needs it because one
 * better-sqlite3 connection has one transaction state: two async transactions interleaving at
 * their awaits would nest BEGINs on it.
 */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T> | T): Promise<T> {
    const result = this.#tail.then(task);
    // The queue continues after a failed task; the failure is the caller's to handle.
    this.#tail = result.catch(() => undefined);
    return result;
  }
}
