export interface ApiKeyRecord {
  id: string;
  ownerId: string;
}

/** Where API keys are kept: their SHA-256 hashes only, never a key. */
export interface ApiKeyRepository {
  insert(record: ApiKeyRecord & { keyHash: string }): Promise<void>;
  /** The unrevoked key with this hash, if any. */
  findActiveByHash(keyHash: string): Promise<ApiKeyRecord | null>;
  /** Revokes the key with this id, or every key of this owner; returns how many were revoked. */
  revoke(ownerOrKeyId: string): Promise<number>;
}
