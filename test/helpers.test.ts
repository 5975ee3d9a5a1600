import { describe, expect, it } from 'vitest';
import { createTestDatabase } from './helpers.js';

describe('createTestDatabase', () => {
  it('makes a utf8mb4 database whatever the server default character set is', async () => {
    const t = await createTestDatabase('charset');
    try {
      const [rows] = await t.db.query(
        'SELECT DEFAULT_CHARACTER_SET_NAME AS charset, DEFAULT_COLLATION_NAME AS collation FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?',
        [t.name],
      );
      expect(rows).toEqual([{ charset: 'utf8mb4', collation: 'utf8mb4_unicode_ci' }]);
    } finally {
      await t.drop();
    }
  });
});
