import { describe, expect, it } from 'vitest';
import { ScriptSplitter, splitScript } from '../../src/db/mysql/script.js';

const sqlOf = (text: string, backslashEscapes = true) => splitScript(text, backslashEscapes).map((s) => s.sql);

/** The same script pushed one character at a time: the splitter must not depend on where the pieces end. */
function byCharacters(text: string): string[] {
  const splitter = new ScriptSplitter();
  const out = [];
  for (const c of text) out.push(...splitter.push(c));
  out.push(...splitter.end());
  return out.map((s) => s.sql);
}

const DUMP = `-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB
--
-- Host: 127.0.0.1    Database: shop
-- ------------------------------------------------------

/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*!40103 SET TIME_ZONE='+00:00' */;
/*M!100616 SET @OLD_NOTE_VERBOSITY=@@NOTE_VERBOSITY, NOTE_VERBOSITY=0 */;

DROP TABLE IF EXISTS \`orders\`;
CREATE TABLE \`orders\` (
  \`id\` int(11) NOT NULL,
  \`note\` varchar(50) DEFAULT 'a;b' COMMENT 'it''s; fine',
  PRIMARY KEY (\`id\`)
) ENGINE=InnoDB;

LOCK TABLES \`orders\` WRITE;
/*!40000 ALTER TABLE \`orders\` DISABLE KEYS */;
INSERT INTO \`orders\` VALUES (1,'x;y'),(2,'back\\\\slash; and \\'quote\\''),(3,"dq;\\"");
/*!40000 ALTER TABLE \`orders\` ENABLE KEYS */;
UNLOCK TABLES;
/*!50003 SET @saved_cs_client      = @@character_set_client */ ;
DELIMITER ;;
/*!50003 CREATE*/ /*!50017 DEFINER=\`root\`@\`localhost\`*/ /*!50003 TRIGGER orders_bi BEFORE INSERT ON orders FOR EACH ROW BEGIN
  SET NEW.note = CONCAT(NEW.note, ';');
  SET @n = 1;
END */;;
DELIMITER ;
/*!50003 SET character_set_client  = @saved_cs_client */ ;
DELIMITER ;;
CREATE DEFINER=\`root\`@\`localhost\` PROCEDURE \`p\`()
BEGIN
  # a comment; with a semicolon
  SELECT 1; -- trailing; comment
  /* block; comment */ SELECT 2;
END ;;
DELIMITER ;
-- Dump completed
`;

const EXPECTED = [
  "/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */",
  "/*!40103 SET TIME_ZONE='+00:00' */",
  '/*M!100616 SET @OLD_NOTE_VERBOSITY=@@NOTE_VERBOSITY, NOTE_VERBOSITY=0 */',
  'DROP TABLE IF EXISTS `orders`',
  "CREATE TABLE `orders` (\n  `id` int(11) NOT NULL,\n  `note` varchar(50) DEFAULT 'a;b' COMMENT 'it''s; fine',\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB",
  'LOCK TABLES `orders` WRITE',
  '/*!40000 ALTER TABLE `orders` DISABLE KEYS */',
  "INSERT INTO `orders` VALUES (1,'x;y'),(2,'back\\\\slash; and \\'quote\\''),(3,\"dq;\\\"\")",
  '/*!40000 ALTER TABLE `orders` ENABLE KEYS */',
  'UNLOCK TABLES',
  '/*!50003 SET @saved_cs_client      = @@character_set_client */',
  "/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER orders_bi BEFORE INSERT ON orders FOR EACH ROW BEGIN\n  SET NEW.note = CONCAT(NEW.note, ';');\n  SET @n = 1;\nEND */",
  '/*!50003 SET character_set_client  = @saved_cs_client */',
  'CREATE DEFINER=`root`@`localhost` PROCEDURE `p`()\nBEGIN\n  # a comment; with a semicolon\n  SELECT 1; -- trailing; comment\n  /* block; comment */ SELECT 2;\nEND',
];

describe('ScriptSplitter', () => {
  it('splits a dump: quotes, escapes, comments, versioned comments and DELIMITER blocks', () => {
    expect(sqlOf(DUMP)).toEqual(EXPECTED);
  });

  it('gives the same statements however the text is cut into pieces', () => {
    expect(byCharacters(DUMP)).toEqual(EXPECTED);
  });

  it('gives the same statements with the text cut in two anywhere (runs of plain characters cross the cut)', () => {
    for (let cut = 0; cut <= DUMP.length; cut++) {
      const splitter = new ScriptSplitter();
      const out = [...splitter.push(DUMP.slice(0, cut)), ...splitter.push(DUMP.slice(cut)), ...splitter.end()];
      expect(out.map((s) => s.sql), `cut at ${cut}`).toEqual(EXPECTED);
      expect(out.map((s) => s.line)).toEqual(splitScript(DUMP).map((s) => s.line));
    }
  });

  it('numbers statements and gives the line each starts on', () => {
    const statements = splitScript('-- head\n\nSELECT 1;\nSELECT\n  2; SELECT 3;\n\n\nSELECT 4');
    expect(statements).toEqual([
      { sql: 'SELECT 1', index: 1, line: 3 },
      { sql: 'SELECT\n  2', index: 2, line: 4 },
      { sql: 'SELECT 3', index: 3, line: 5 },
      { sql: 'SELECT 4', index: 4, line: 8 },
    ]);
  });

  it('reads -- as a comment only before white space, as the server does', () => {
    expect(sqlOf('SELECT 1--2;\nSELECT 3 -- x;\n;')).toEqual(['SELECT 1--2', 'SELECT 3 -- x;']);
  });

  it('drops statements that are only comments or white space, and a last statement needs no delimiter', () => {
    expect(sqlOf('/* nothing */;\n-- nothing;\n# nothing\n;;  ;\nSELECT 1')).toEqual(['SELECT 1']);
    expect(sqlOf('')).toEqual([]);
  });

  it('under NO_BACKSLASH_ESCAPES a backslash does not escape a quote', () => {
    expect(sqlOf("SELECT 'a\\'; SELECT 'b'", false)).toEqual(["SELECT 'a\\'", "SELECT 'b'"]);
    expect(sqlOf("SELECT 'a\\'; SELECT 'b'", true)).toEqual(["SELECT 'a\\'; SELECT 'b'"]);
  });

  it('a statement of megabytes on one line, pushed in pieces, is read once (not again at each piece)', () => {
    // Before: the line was held until its newline, and searched again at each piece: 16 MB in
    // 64 KiB pieces took over 20 s (a statement near max_allowed_packet, a dump's long INSERT).
    const value = 'v'.repeat(16 * 1024 * 1024);
    const text = `SELECT 1;\nINSERT INTO t VALUES ('${value}', 'a\\'b');\n  DELIM` + 'ITER $$\nSELECT 2; SELECT 3$$\n';
    const splitter = new ScriptSplitter();
    const started = performance.now();
    const out = [];
    for (let i = 0; i < text.length; i += 64 * 1024) out.push(...splitter.push(text.slice(i, i + 64 * 1024)));
    out.push(...splitter.end());
    expect(performance.now() - started).toBeLessThan(3000);
    expect(out.map((s) => s.sql)).toEqual(['SELECT 1', `INSERT INTO t VALUES ('${value}', 'a\\'b')`, 'SELECT 2; SELECT 3']);
  });

  it('takes a multi-character delimiter, and DELIMITER only at the start of a line', () => {
    expect(sqlOf('DELIMITER $$\nSELECT 1; SELECT 2$$\nDELIMITER ;\nSELECT 3;')).toEqual(['SELECT 1; SELECT 2', 'SELECT 3']);
    expect(sqlOf("SELECT 'DELIMITER $$';\n  delimiter //\nSELECT 4//")).toEqual(["SELECT 'DELIMITER $$'", 'SELECT 4']);
  });
});
