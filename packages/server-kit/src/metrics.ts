import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { FastifyInstance } from 'fastify';

/**
 * Request metrics for `/metrics` (Prometheus text format). Content-free by construction: the only
 * labels are the HTTP method, the route *pattern* (`/kbs/v0/resource/:repository/:type/:tag`, never
 * the concrete path) and the status code, so no resource name, tenant or key id can appear. Each
 * server has its own registry: two servers in one process never mix their counts.
 */
export class HttpMetrics {
  readonly registry = new Registry();
  readonly #requests: Counter<'method' | 'route' | 'status'>;
  readonly #duration: Histogram<'method' | 'route' | 'status'>;

  constructor(service: string, options: { readonly processMetrics?: boolean } = {}) {
    this.registry.setDefaultLabels({ service });
    this.#requests = new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests answered, by method, route pattern and status.',
      labelNames: ['method', 'route', 'status'],
      registers: [this.registry],
    });
    this.#duration = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'Time from receiving a request to sending its answer, by method, route pattern and status.',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [this.registry],
    });
    if (options.processMetrics === true) collectDefaultMetrics({ register: this.registry });
  }

  /** Counts one answered request. `route` must be a route pattern, never a concrete URL. */
  observe(method: string, route: string, status: number, seconds: number): void {
    const labels = { method, route, status: String(status) };
    this.#requests.inc(labels);
    this.#duration.observe(labels, seconds);
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** Counts every answered request of `app` and serves the registry at GET /metrics. */
  install(app: FastifyInstance): void {
    app.addHook('onResponse', (request, reply, done) => {
      // Unmatched requests (404s) are counted under one label, so probing URLs cannot grow the label set.
      const route = request.routeOptions.url ?? 'unmatched';
      this.observe(request.method, route, reply.statusCode, reply.elapsedTime / 1000);
      done();
    });
    app.get('/metrics', async (_request, reply) => {
      const { contentType, body } = await this.render();
      return reply.type(contentType).header('cache-control', 'no-store').send(body);
    });
  }
}
