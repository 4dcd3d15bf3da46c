import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { ApiKeyRepository } from '../../ports/api-key-repository.js';
import { InvalidInputError } from '../errors.js';

/** What an owner is called: letters, digits, ".", "_", "-", "@"; 1 to 64 characters. */
const OWNER_ID_PATTERN = /^[\w.@-]{1,64}$/;

const KEY_PREFIX = 'sa_';

/**
 * SHA-256 of the key, hex. A fast hash is enough: keys are 256 random bits, so there
 * is nothing to guess from a stolen hash; slow hashes (bcrypt, scrypt) are for
 * low-entropy passwords and would cost milliseconds on every request.
 */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** Creating, revoking and checking API keys (AUTH_MODE=api-key). */
export class ApiKeyService {
  constructor(private readonly store: ApiKeyRepository) {}

  /** A new key for the owner: `sa_` + 43 base64url characters (32 random bytes). Only its hash is stored. */
  async create(ownerId: string): Promise<{ id: string; key: string }> {
    if (!OWNER_ID_PATTERN.test(ownerId)) {
      throw new InvalidInputError(`"${ownerId}" is not a valid owner: use 1 to 64 letters, digits, ".", "_", "-" or "@".`);
    }
    const key = `${KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
    const id = randomUUID();
    await this.store.insert({ id, ownerId, keyHash: hashApiKey(key) });
    return { id, key };
  }

  /** Revokes one key (by id) or all of an owner's; returns how many. */
  revoke(ownerOrKeyId: string): Promise<number> {
    return this.store.revoke(ownerOrKeyId);
  }

  /** The owner of an unrevoked key; null for anything else. */
  async ownerOf(key: string): Promise<string | null> {
    if (!key.startsWith(KEY_PREFIX)) return null;
    return (await this.store.findActiveByHash(hashApiKey(key)))?.ownerId ?? null;
  }
}
