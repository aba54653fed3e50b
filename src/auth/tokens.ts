import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import type { Role } from '../domain/types';

export interface TokenRequest {
  sub: string;
  roles: Role[];
  teams: string[];
  /** Lifetime such as `12h`, `30m`, `7d`. */
  ttl: string;
  issuer?: string;
  audience?: string;
}

/** Signs an HS256 token with `exp`, `sub`, `roles` and `teams`. */
export function signToken(secret: string, req: TokenRequest): string {
  return jwt.sign({ roles: req.roles, teams: req.teams }, secret, {
    algorithm: 'HS256',
    subject: req.sub,
    expiresIn: req.ttl as jwt.SignOptions['expiresIn'],
    ...(req.issuer ? { issuer: req.issuer } : {}),
    ...(req.audience ? { audience: req.audience } : {}),
  });
}

const secretFile = (dataDir: string): string => path.resolve(dataDir, 'jwt-secret');

/** The dev runner's secret under `dataDir`, if one was generated. */
export function readDevSecret(dataDir: string): string | undefined {
  const file = secretFile(dataDir);
  return existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined;
}

/** A value generated once and kept (mode 600) in `file` under `dataDir`. */
function keptUnder(dataDir: string, file: string, make: () => string): string {
  const where = path.resolve(dataDir, file);
  if (existsSync(where)) return readFileSync(where, 'utf8').trim();
  mkdirSync(path.resolve(dataDir), { recursive: true });
  const value = make();
  writeFileSync(where, value + '\n', { mode: 0o600 });
  return value;
}

/** The dev runner's secret: generated once, kept (mode 600) under `dataDir`. Only the dev runner calls this. */
export function devSecret(dataDir: string): string {
  return (
    readDevSecret(dataDir) ?? keptUnder(dataDir, 'jwt-secret', () => randomBytes(48).toString('base64url'))
  );
}

/** The dev runner's encryption key (32 bytes, base64), kept like its JWT secret. Only the dev runner calls this. */
export function devEncryptionKey(dataDir: string): string {
  return keptUnder(dataDir, 'encryption-key', () => randomBytes(32).toString('base64'));
}
