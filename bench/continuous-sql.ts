/** The continuous scenario's table and statement (bench/continuous.ts and its children). */

/** Each row carries the Date.now() its job was spooled (or added) at. */
export function createContinuousTableSql(table: string): string {
  return `CREATE TABLE \`${table}\` (id BIGINT AUTO_INCREMENT PRIMARY KEY, a INT NOT NULL, spooled_ms BIGINT NOT NULL) ENGINE=InnoDB`;
}

export function insertContinuousSql(table: string): string {
  return `INSERT INTO \`${table}\` (a, spooled_ms) VALUES (?, ?)`;
}
