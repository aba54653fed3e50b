import { z } from 'zod';

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

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
    JWT_SECRET: optionalString,
    JWT_JWKS_URI: optionalString,
    JWT_ISSUER: optionalString,
    JWT_AUDIENCE: optionalString,
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    DRIVER: z.enum(['simulated']).default('simulated'),
    SIMULATED_DELAY_MS: z.coerce.number().int().min(0).max(3_600_000).default(2000),
  })
  .superRefine((env, ctx) => {
    if (env.JWT_SECRET !== undefined && env.JWT_SECRET.length < 32) {
      ctx.addIssue({ code: 'custom', path: ['JWT_SECRET'], message: 'must be at least 32 characters' });
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
