import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { TresorError } from '@tresor/protocol';
import type { SqlClient, SqlRow, SqlValue } from './sql-client.js';
import { sqliteCodeError } from './sqlite-errors.js';
import {
  QueuedSqliteClient,
  runSqliteBatch,
  type SqliteBatch,
  type SqliteBatchOutcome,
  type SqliteConnection,
} from './sqlite-connection.js';
import { createPrivateFile, queueFor, SQLITE_MEMORY, type SqliteOptions } from './sqlite-client.js';

/**
 * The worker's program, evaluated as CommonJS: a string rather than a module file so that it runs
 * the same from the TypeScript sources (tests) and from dist/ (as packages/crypto's SHA-256 worker
 * does). It owns one better-sqlite3 connection and runs the statements it is sent one at a time,
 * in order, answering each with `[ok, value]`. A failure carries SQLite's result code and message
 * only; the calling thread maps it to a catalogue code. A `batch` message is a whole write
 * transaction, run by `runSqliteBatch` (sqlite-connection.ts; its source is embedded below, so the
 * inline driver and the worker run the very same steps), answered once with
 * `[ok, changes or failure, restored]`.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const failure = (err) => [false, err instanceof Database.SqliteError
  ? { sqlite: true, code: err.code, message: err.message }
  : { sqlite: false, code: '', message: String(err && err.message) }];
let db;
try {
  db = new Database(workerData.file, {
    readonly: workerData.readOnly,
    fileMustExist: workerData.readOnly,
    timeout: workerData.busyTimeoutMs,
  });
  if (!workerData.readOnly && workerData.file !== ':memory:') db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('schema_version');
  parentPort.postMessage([true, null]);
} catch (err) {
  parentPort.postMessage(failure(err));
  db = undefined;
}
const statements = new Map();
const statement = (sql) => {
  let s = statements.get(sql);
  if (s === undefined) {
    s = db.prepare(sql);
    statements.set(sql, s);
  }
  return s;
};
const param = (v) => (v instanceof Uint8Array && !Buffer.isBuffer(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v);
const runSqliteBatch = ${runSqliteBatch.toString()};
const batchSteps = {
  exec: (sql) => { db.exec(sql); },
  run: (sql, params) => statement(sql).run(...params.map(param)).changes,
  rollback: () => { if (db.inTransaction) db.exec('ROLLBACK'); },
};
const batch = (relaxed, statements) => {
  const outcome = runSqliteBatch(batchSteps, { statements, relaxed });
  return outcome.committed
    ? [true, outcome.changes, outcome.restored]
    : [false, failure(outcome.error)[1], outcome.restored];
};
parentPort.on('message', ([kind, sql, params]) => {
  if (db === undefined) return parentPort.postMessage([false, { sqlite: false, code: '', message: 'not open' }]);
  if (kind === 'batch') return parentPort.postMessage(batch(sql, params));
  try {
    let value = null;
    if (kind === 'all') value = statement(sql).all(...params.map(param));
    else if (kind === 'run') value = statement(sql).run(...params.map(param)).changes;
    else if (kind === 'exec') db.exec(sql);
    else if (kind === 'rollback') { if (db.inTransaction) db.exec('ROLLBACK'); }
    else if (kind === 'close') { statements.clear(); db.close(); db = undefined; }
    parentPort.postMessage([true, value]);
  } catch (err) {
    parentPort.postMessage(failure(err));
  }
});
`;

type Kind = 'all' | 'run' | 'exec' | 'rollback' | 'close';
type Answer = readonly [ok: boolean, value: unknown, restored?: boolean];
interface WorkerFailure {
  readonly sqlite: boolean;
  readonly code: string;
  readonly message: string;
}

interface Pending {
  resolve(answer: Answer): void;
  reject(error: unknown): void;
}

/** better-sqlite3 as the worker loads it: resolved here, so the worker finds it wherever it runs. */
const DRIVER = createRequire(import.meta.url).resolve('better-sqlite3');

function workerFailure(value: unknown): TresorError {
  const failure = value as Partial<WorkerFailure> | null;
  if (failure?.sqlite === true && typeof failure.code === 'string') {
    const cause = Object.assign(new Error(String(failure.message)), { code: failure.code });
    return sqliteCodeError(failure.code, String(failure.message), cause);
  }
  return new TresorError('INTERNAL_ERROR', 'the SQLite driver failed unexpectedly', {
    cause: new Error(String(failure?.message)),
  });
}

/**
 * The SQLite driver with its connection on a worker thread. better-sqlite3 is synchronous: on the
 * calling thread every statement, and above all every COMMIT's WAL fsync (synchronous=FULL), blocks
 * the event loop — on a loaded machine 0.5–2 ms per commit, during which no request is served. Here
 * the calling thread only posts the statement and gets on with other work; the audit log's group
 * commit keeps gathering records while the previous batch is being made durable.
 *
 * Same guarantees as {@link openSqlite}: a statement's promise settles when the worker has run it,
 * so a transaction's promise resolves only after its COMMIT returned; transactions of one database
 * file in this process are serialised by the same queue as the inline driver's; the same pragmas,
 * error codes and private file mode.
 *
 * @throws TresorError STORAGE_UNAVAILABLE when the file cannot be opened as an SQLite database
 */
export async function openSqliteInWorker(options: SqliteOptions): Promise<SqlClient> {
  const readOnly = options.readOnly ?? false;
  if (!readOnly && options.file !== SQLITE_MEMORY) createPrivateFile(options.file);
  const connection = new WorkerConnection({
    driver: DRIVER,
    file: options.file,
    readOnly,
    busyTimeoutMs: options.busyTimeoutMs ?? 5000,
  });
  try {
    await connection.opened;
  } catch (cause) {
    await connection.terminate();
    throw new TresorError('STORAGE_UNAVAILABLE', `cannot open the SQLite database ${options.file}`, {
      cause,
    });
  }
  return new QueuedSqliteClient(connection, queueFor(options.file));
}

/** One worker thread holding one connection; answers arrive in the order statements were sent. */
class WorkerConnection implements SqliteConnection {
  readonly opened: Promise<void>;
  readonly #worker: Worker;
  readonly #pending: Pending[] = [];
  #failure: TresorError | undefined;
  #exited = false;

  constructor(workerData: Readonly<Record<string, unknown>>) {
    this.#worker = new Worker(WORKER_SOURCE, { eval: true, workerData });
    this.opened = new Promise<Answer>((resolve, reject) => {
      this.#pending.push({ resolve, reject });
    }).then(([ok, value]) => {
      if (!ok) throw workerFailure(value);
    });
    this.#worker.on('message', (answer: Answer) => {
      this.#pending.shift()?.resolve(answer);
    });
    this.#worker.on('error', (error) => {
      this.#fail(error);
    });
    this.#worker.on('exit', (code) => {
      this.#exited = true;
      this.#fail(new Error(`the SQLite worker thread exited with code ${String(code)}`));
    });
  }

  /** Runs one statement on the worker; rejects with the mapped TresorError. */
  async send(kind: Kind, sql = '', params: readonly SqlValue[] = []): Promise<unknown> {
    const [ok, value] = await this.#request([kind, sql, params]);
    if (!ok) throw workerFailure(value);
    return value;
  }

  /** One message for the whole transaction; rejects only when the worker thread failed. */
  async batch({ statements, relaxed }: SqliteBatch): Promise<SqliteBatchOutcome> {
    const [ok, value, restored = false] = await this.#request(['batch', relaxed, statements]);
    return ok
      ? { committed: true, changes: value as number[], restored }
      : { committed: false, error: workerFailure(value), restored };
  }

  #request(message: readonly unknown[]): Promise<Answer> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const answer = new Promise<Answer>((resolve, reject) => {
      this.#pending.push({ resolve, reject });
    });
    this.#worker.postMessage(message);
    return answer;
  }

  async query(sql: string, params: readonly SqlValue[]): Promise<SqlRow[]> {
    return (await this.send('all', sql, params)) as SqlRow[];
  }

  async execute(sql: string, params: readonly SqlValue[]): Promise<number> {
    return (await this.send('run', sql, params)) as number;
  }

  async exec(sql: string): Promise<void> {
    await this.send('exec', sql);
  }

  /** A failed ROLLBACK leaves nothing to do: the worker's `rollback` checks whether one is open. */
  async rollback(): Promise<void> {
    await this.send('rollback').catch(() => undefined);
  }

  async close(): Promise<void> {
    try {
      await this.send('close');
    } finally {
      await this.terminate();
    }
  }

  async terminate(): Promise<void> {
    if (!this.#exited) await this.#worker.terminate();
  }

  #fail(cause: unknown): void {
    this.#failure ??= new TresorError('STORAGE_UNAVAILABLE', 'the SQLite worker thread stopped', { cause });
    for (const request of this.#pending.splice(0)) request.reject(this.#failure);
  }
}
