/**
 * Signing secrets at rest: AES-256-GCM under the platform's `IDP_ENCRYPTION_KEY`, each ciphertext
 * bound to the row it belongs to (its additional data, e.g. `target:deploy-hook`), so a ciphertext
 * copied onto another row does not decrypt. Node's own crypto: no hand-made cipher.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const VERSION = 'v1';

/** The 32-byte key from its base64 spelling (validated by the config). */
export function encryptionKey(base64: string): Buffer {
  const key = Buffer.from(base64, 'base64');
  if (key.length !== 32) throw new Error('the encryption key must be 32 bytes');
  return key;
}

/** Encrypts `plaintext` for the row named `binding`: `v1.<iv>.<tag>.<ciphertext>` (base64url). */
export function seal(key: Buffer, binding: string, plaintext: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(binding, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return [VERSION, iv, cipher.getAuthTag(), body]
    .map((p) => (typeof p === 'string' ? p : p.toString('base64url')))
    .join('.');
}

/** Decrypts what {@link seal} made for `binding`; throws when the key, the binding or the bytes differ. */
export function open(key: Buffer, binding: string, sealed: string): string {
  const [version, iv, tag, body] = sealed.split('.');
  if (version !== VERSION || !iv || !tag || body === undefined) throw new Error('not a sealed secret');
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
  decipher.setAAD(Buffer.from(binding, 'utf8'));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
}

/** A new Standard Webhooks signing secret: `whsec_` and 32 random bytes in base64. */
export function newSigningSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}
