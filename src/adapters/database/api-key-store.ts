import type { DataSource } from 'typeorm';
import type { ApiKeyRecord, ApiKeyRepository } from '../../ports/api-key-repository.js';

/** The database side of API keys (table api_keys): hashes only, never a key. */
export class ApiKeyStore implements ApiKeyRepository {
  constructor(private readonly dataSource: DataSource) {}

  async insert(record: ApiKeyRecord & { keyHash: string }): Promise<void> {
    await this.dataSource.query(`INSERT INTO "api_keys" ("id", "owner_id", "key_hash") VALUES ($1, $2, $3)`, [record.id, record.ownerId, record.keyHash]);
  }

  /** The unrevoked key with this hash, if any. */
  async findActiveByHash(keyHash: string): Promise<ApiKeyRecord | null> {
    const rows: { id: string; owner_id: string }[] = await this.dataSource.query(
      `SELECT "id", "owner_id" FROM "api_keys" WHERE "key_hash" = $1 AND "revoked_at" IS NULL`,
      [keyHash],
    );
    return rows[0] ? { id: rows[0].id, ownerId: rows[0].owner_id } : null;
  }

  /** Revokes the key with this id, or every key of this owner; returns how many were revoked. */
  async revoke(ownerOrKeyId: string): Promise<number> {
    const rows: unknown[] = await this.dataSource.query(
      `UPDATE "api_keys" SET "revoked_at" = now() WHERE "revoked_at" IS NULL AND ("owner_id" = $1 OR "id"::text = $1) RETURNING "id"`,
      [ownerOrKeyId],
    );
    // pg returns [rows, count] for UPDATE … RETURNING through TypeORM; PGlite returns the rows.
    const [first] = rows;
    return Array.isArray(first) ? first.length : rows.length;
  }
}
