import { z } from 'zod';

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

/** True for 32 bytes spelled in base64 (standard or URL-safe alphabet). */
export function isEncryptionKey(value: string): boolean {
  return /^[A-Za-z0-9+/_-]{43}=?$/.test(value) && Buffer.from(value, 'base64').length === 32;
}

const envSchema = z
  .object({
    PORT: z.coerce.number().int().min(0).max(65535).default(8000),
    HOST: z.string().default('127.0.0.1'),
    DATA_DIR: z.string().default('./.data'),
    DATABASE_URL: optionalString,
    TEMPORAL_ADDRESS: optionalString,
    TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
    TEMPORAL_TASK_QUEUE: z.string().min(1).default('idp'),
    TEMPORAL_UI_URL: z.string().url().default('http://localhost:8233'),
    TEMPORAL_TLS_CERT_PATH: optionalString,
    TEMPORAL_TLS_KEY_PATH: optionalString,
    TEMPORAL_TLS_CA_PATH: optionalString,
    TEMPORAL_TLS_SERVER_NAME: optionalString,
    TEMPORAL_API_KEY: optionalString,
    TEMPORAL_METRICS_BIND: optionalString,
    WORKER_METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
    WORKER_SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(30_000),
    /**
     * Workflow runs a worker keeps in memory. A run evicted from it is replayed from its history when
     * it next has work (an approval, a callback): a few milliseconds for a deployment's short history,
     * against about 0.8 MB for each run kept (`npm run bench`, 5,000 waiting: 793 MB with 500 kept,
     * 471 MB with 100, 440 MB with 50; approval latency and the drain rate no worse with 100). The
     * SDK's own default (about 2,300 runs on this heap) took such a worker past 1 GB.
     */
    WORKER_MAX_CACHED_WORKFLOWS: z.coerce.number().int().min(0).default(100),
    JWT_SECRET: optionalString,
    JWT_JWKS_URI: optionalString,
    JWT_ISSUER: optionalString,
    JWT_AUDIENCE: optionalString,
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    DRIVER: z.enum(['simulated']).default('simulated'),
    SIMULATED_DELAY_MS: z.coerce.number().int().min(0).max(3_600_000).default(2000),
    /** The API's base as targets reach it (`callback_url`); default `http://127.0.0.1:$PORT`. */
    PUBLIC_URL: optionalString,
    /** 32 bytes, base64: encrypts targets' and subscriptions' signing secrets at rest. */
    IDP_ENCRYPTION_KEY: optionalString,
    /** The folder of the executables command targets may run (worker). */
    DRIVER_COMMANDS_DIR: optionalString,
    /** `off` writes the audit log unchained: only for the benchmark's baseline. */
    IDP_AUDIT_CHAIN: z.enum(['on', 'off']).default('on'),
  })
  .superRefine((env, ctx) => {
    if (env.JWT_SECRET !== undefined && env.JWT_SECRET.length < 32) {
      ctx.addIssue({ code: 'custom', path: ['JWT_SECRET'], message: 'must be at least 32 characters' });
    }
    if (env.IDP_ENCRYPTION_KEY !== undefined && !isEncryptionKey(env.IDP_ENCRYPTION_KEY)) {
      ctx.addIssue({
        code: 'custom',
        path: ['IDP_ENCRYPTION_KEY'],
        message: 'must be 32 bytes in base64 (e.g. `openssl rand -base64 32`)',
      });
    }
    if (env.PUBLIC_URL !== undefined && !/^https?:\/\/[^\s/]+(\/[^\s]*)?$/.test(env.PUBLIC_URL)) {
      ctx.addIssue({ code: 'custom', path: ['PUBLIC_URL'], message: 'must be an http(s) URL' });
    }
    if ((env.TEMPORAL_TLS_CERT_PATH === undefined) !== (env.TEMPORAL_TLS_KEY_PATH === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['TEMPORAL_TLS_CERT_PATH'],
        message: 'TEMPORAL_TLS_CERT_PATH and TEMPORAL_TLS_KEY_PATH go together',
      });
    }
  });

/** The platform's configuration, parsed once from the environment. */
export type Config = z.infer<typeof envSchema>;

/** Thrown when the environment does not describe a runnable platform. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Parses `env` (default `process.env`) into a {@link Config}, failing fast with one line per problem.
 * Unknown variables are ignored; nothing has a default secret.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(env)'}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  return parsed.data;
}

/** Fails unless the config can verify tokens: a secret or a JWKS URI. */
export function requireAuthConfig(config: Config): void {
  if (config.JWT_SECRET === undefined && config.JWT_JWKS_URI === undefined) {
    throw new ConfigError('invalid configuration:\n  JWT_SECRET or JWT_JWKS_URI must be set');
  }
}

/** Fails unless the config names the external services (production entry points). */
export function requireExternalServices(config: Config): void {
  const missing = (['DATABASE_URL', 'TEMPORAL_ADDRESS'] as const).filter((k) => config[k] === undefined);
  if (missing.length > 0) {
    throw new ConfigError(`invalid configuration:\n${missing.map((k) => `  ${k}: required`).join('\n')}`);
  }
}

/** Fails unless the config holds the key that encrypts signing secrets (production entry points). */
export function requireEncryptionKey(config: Config): void {
  if (config.IDP_ENCRYPTION_KEY === undefined) {
    throw new ConfigError(
      'invalid configuration:\n  IDP_ENCRYPTION_KEY: required (32 bytes in base64, e.g. `openssl rand -base64 32`)',
    );
  }
}

/** The API's base URL as targets call it back: `PUBLIC_URL`, else `http://127.0.0.1:$PORT`. */
export function publicUrl(config: Config): string {
  return (config.PUBLIC_URL ?? `http://127.0.0.1:${config.PORT}`).replace(/\/+$/, '');
}
