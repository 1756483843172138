import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * TEST-ONLY stand-in for AMD KDS, Intel PCS and the NVIDIA RIM service: a node:http server on
 * 127.0.0.1 (random port) answering exact paths with canned responses built from the shared test
 * data. The collateral fetcher's tests point every base URL at it; nothing reaches a real service.
 */

export interface FakeResponse {
  readonly status?: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Uint8Array | string;
  /**
   * Send the body in pieces of this size, one per event-loop turn, with chunked transfer coding and
   * no Content-Length (exercises streaming reads and limits enforced while counting).
   */
  readonly chunkSize?: number;
}

export class FakeCollateralServer {
  /** Every request's path and query, in arrival order. */
  readonly requests: string[] = [];
  readonly #routes = new Map<string, FakeResponse[]>();
  readonly #server: Server;
  #url = '';

  private constructor() {
    this.#server = createServer((request, response) => {
      this.#answer(request, response);
    });
  }

  static async start(): Promise<FakeCollateralServer> {
    const fake = new FakeCollateralServer();
    await new Promise<void>((resolve) => {
      fake.#server.listen(0, '127.0.0.1', resolve);
    });
    fake.#url = `http://127.0.0.1:${(fake.#server.address() as AddressInfo).port}`;
    return fake;
  }

  /** `http://127.0.0.1:<port>` */
  get url(): string {
    return this.#url;
  }

  /** Answers GET `pathAndQuery` with `responses` in turn (the last one from then on). */
  serve(pathAndQuery: string, ...responses: FakeResponse[]): void {
    this.#routes.set(pathAndQuery, [...responses]);
  }

  /** Forgets routes and recorded requests. */
  reset(): void {
    this.#routes.clear();
    this.requests.length = 0;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve, reject) => {
      this.#server.close((err) => {
        if (err) reject(err);
        else resolve();
      });
    });
  }

  #answer(request: IncomingMessage, response: ServerResponse): void {
    const path = request.url ?? '/';
    this.requests.push(path);
    const queue = this.#routes.get(path);
    // A route answers its responses in order, then repeats the last one.
    const answer: FakeResponse =
      queue === undefined
        ? { status: 404, body: 'not found' }
        : queue.length > 1
          ? queue.shift()!
          : queue[0]!;
    const body = typeof answer.body === 'string' ? Buffer.from(answer.body) : Buffer.from(answer.body ?? []);
    const length = answer.chunkSize === undefined ? { 'content-length': String(body.length) } : {};
    response.writeHead(answer.status ?? 200, { ...length, ...answer.headers });
    if (answer.chunkSize === undefined) {
      response.end(body);
      return;
    }
    const size = answer.chunkSize;
    const send = (offset: number): void => {
      if (offset >= body.length) {
        response.end();
        return;
      }
      response.write(body.subarray(offset, offset + size));
      setImmediate(() => {
        send(offset + size);
      });
    };
    send(0);
  }
}

/** The dcap-qvl collateral JSON the TDX vectors ship. */
export interface DcapQvlCollateral {
  readonly pck_crl_issuer_chain: string;
  readonly root_ca_crl: string;
  readonly pck_crl: string;
  readonly tcb_info_issuer_chain: string;
  readonly tcb_info: string;
  readonly tcb_info_signature: string;
  readonly qe_identity_issuer_chain: string;
  readonly qe_identity: string;
  readonly qe_identity_signature: string;
}

/**
 * Splits dcap-qvl collateral back into the responses Intel PCS v4 sends: the signed documents
 * wrapped as `{"tcbInfo": …, "signature": …}` with the URL-encoded issuer chain in a header, the
 * CRLs as DER.
 */
export function pcsResponses(collateral: DcapQvlCollateral): {
  readonly tcbInfo: FakeResponse;
  readonly qeIdentity: FakeResponse;
  readonly pckCrl: FakeResponse;
  readonly rootCaCrl: FakeResponse;
} {
  return {
    tcbInfo: {
      headers: {
        'content-type': 'application/json',
        'TCB-Info-Issuer-Chain': encodeURIComponent(collateral.tcb_info_issuer_chain),
      },
      body: `{"tcbInfo":${collateral.tcb_info},"signature":"${collateral.tcb_info_signature}"}`,
    },
    qeIdentity: {
      headers: {
        'content-type': 'application/json',
        'SGX-Enclave-Identity-Issuer-Chain': encodeURIComponent(collateral.qe_identity_issuer_chain),
      },
      body: `{"enclaveIdentity":${collateral.qe_identity},"signature":"${collateral.qe_identity_signature}"}`,
    },
    pckCrl: {
      headers: {
        'content-type': 'application/pkix-crl',
        'SGX-PCK-CRL-Issuer-Chain': encodeURIComponent(collateral.pck_crl_issuer_chain),
      },
      body: Buffer.from(collateral.pck_crl, 'hex'),
    },
    rootCaCrl: {
      headers: { 'content-type': 'application/pkix-crl' },
      body: Buffer.from(collateral.root_ca_crl, 'hex'),
    },
  };
}
