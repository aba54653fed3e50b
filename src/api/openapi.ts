import { z } from 'zod';
import { registeredRoutes } from './route';

const toSchema = (schema: z.ZodType): Record<string, unknown> =>
  z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;

function parameters(schema: z.ZodType | undefined, where: 'path' | 'query') {
  if (!schema) return [];
  const json = toSchema(schema) as { properties?: Record<string, unknown>; required?: string[] };
  return Object.entries(json.properties ?? {}).map(([name, s]) => ({
    name,
    in: where,
    required: where === 'path' || (json.required ?? []).includes(name),
    schema: s,
  }));
}

const problem = {
  description: 'RFC 9457 problem document',
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
};

const IDEMPOTENCY_KEY = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  schema: { type: 'string', pattern: '^[A-Za-z0-9._:-]{1,255}$' },
};

const PROBLEM_SCHEMA = {
  type: 'object',
  required: ['type', 'title', 'status', 'detail', 'correlation_id'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    correlation_id: { type: 'string' },
    violations: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          rule: { type: 'string' },
          field: { type: 'string' },
          message: { type: 'string' },
          hint: { type: 'string' },
        },
      },
    },
  },
};

/** One route's operation object: summary, who may call it, parameters, body and responses. */
function operation(spec: ReturnType<typeof registeredRoutes>[number]): Record<string, unknown> {
  const responses = Object.fromEntries(
    Object.entries(spec.responses).map(([status, description]) => [
      status,
      Number(status) >= 400
        ? { ...problem, description }
        : { description, content: { 'application/json': {} } },
    ]),
  );
  if (spec.auth !== false) responses['401'] = { ...problem, description: 'missing or invalid token' };
  if (spec.access) responses['403'] ??= { ...problem, description: `not ${spec.access.roles.join(' or ')}` };
  const idempotent = spec.method === 'post' && /\/(deployments|approvals)$/.test(spec.path);
  return {
    summary: spec.summary,
    tags: [spec.tag],
    ...(spec.access ? { 'x-roles': spec.access.roles } : {}),
    parameters: [
      ...parameters(spec.params, 'path'),
      ...parameters(spec.query, 'query'),
      ...(idempotent ? [IDEMPOTENCY_KEY] : []),
    ],
    ...(spec.body
      ? { requestBody: { required: true, content: { 'application/json': { schema: toSchema(spec.body) } } } }
      : {}),
    responses,
    ...(spec.auth === false ? { security: [] } : {}),
  };
}

/** The OpenAPI 3.1 document, generated from the same zod schemas the routes validate with. */
export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const spec of registeredRoutes()) {
    const path = `/api${spec.path.replace(/:([A-Za-z_]+)/g, '{$1}')}`;
    paths[path] = { ...paths[path], [spec.method]: operation(spec) };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Internal Developer Platform API',
      version: '1.0.0',
      description:
        'Register services, provision environments and ship deployments through guardrails; every long-running step is a Temporal workflow.',
    },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      schemas: { Problem: PROBLEM_SCHEMA },
    },
  };
}

const escape = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A self-contained page listing every route (no external assets: it works offline). */
export function docsPage(doc: Record<string, unknown>): string {
  const paths = doc['paths'] as Record<
    string,
    Record<
      string,
      {
        summary: string;
        tags: string[];
        parameters: { name: string; in: string }[];
        requestBody?: unknown;
        responses: Record<string, { description: string }>;
      }
    >
  >;
  const rows = Object.entries(paths)
    .flatMap(([path, ops]) =>
      Object.entries(ops).map(
        ([method, op]) => `<section class="op" id="${escape(`${method}-${path}`)}">
  <h3><span class="m ${method}">${method.toUpperCase()}</span> <code>${escape(path)}</code></h3>
  <p>${escape(op.summary)}</p>
  ${op.parameters.length ? `<p>Parameters: ${op.parameters.map((p) => `<code>${escape(p.name)}</code> (${p.in})`).join(', ')}</p>` : ''}
  ${op.requestBody ? `<details><summary>Request body schema</summary><pre>${escape(JSON.stringify((op.requestBody as { content: { 'application/json': { schema: unknown } } }).content['application/json'].schema, null, 2))}</pre></details>` : ''}
  <ul>${Object.entries(op.responses)
    .map(([s, r]) => `<li><b>${s}</b> ${escape(r.description)}</li>`)
    .join('')}</ul>
</section>`,
      ),
    )
    .join('\n');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>IDP API docs</title>
<style>body{font-family:system-ui,sans-serif;max-width:980px;margin:2rem auto;padding:0 1rem;color:#222}
.op{border:1px solid #ddd;border-radius:6px;padding:.5rem 1rem;margin:.8rem 0}.m{display:inline-block;min-width:4.5rem;text-align:center;border-radius:4px;color:#fff;font-size:.8rem;padding:.15rem .3rem}
.get{background:#2b7de9}.post{background:#2a9d59}.put{background:#c98a00}.patch{background:#8a4fd3}pre{background:#f6f6f6;padding:.5rem;overflow:auto}</style></head>
<body><h1>Internal Developer Platform API</h1><p>OpenAPI 3.1 document: <a href="/api/openapi.json">/api/openapi.json</a>. Authenticate with <code>Authorization: Bearer &lt;JWT&gt;</code> (<code>npm run token</code>).</p>
${rows}</body></html>`;
}
