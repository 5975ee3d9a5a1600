/** The ledger table's name as SQLite reads it: `name` or `schema.name`, each part in "…". Pure. */
export function quoteTable(table: string): string {
  return table.split('.').map((part) => `"${part.replace(/"/g, '""')}"`).join('.');
}
