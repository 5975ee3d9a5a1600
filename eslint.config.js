// ESLint flat config: @eslint/js recommended everywhere, plus typescript-eslint's type-aware
// recommendedTypeChecked over the TypeScript (src/, test/, bench/*.ts), typed by tsconfig.json.
// No formatter is run (see the commit that added this file).
import { defineConfig } from 'eslint/config';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default defineConfig(
  {
    ignores: [
      'dist/',
      'dist-bench/',
      'coverage/',
      // Runtime folders of a querybatch home at the repository root (spooled jobs, logs).
      'spool/',
      'failed/',
      'logs/',
    ],
  },
  js.configs.recommended,
  {
    // Plain JavaScript: this file and the bench/*.mjs scripts (Node ESM, run as they are).
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: {
      ecmaVersion: 'latest',
      sourceType: 'module',
      // The Node globals these scripts use (no `globals` package for so few).
      globals: { process: 'readonly', console: 'readonly', performance: 'readonly' },
    },
  },
  {
    files: ['src/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts', 'vitest.config.ts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // A leading underscore marks a name that is there on purpose and unused: a callback
      // parameter before the one needed (`(_label, value) => …`), or a key destructured only to
      // leave it out of a rest object (`const { tail: _tail, ...rest } = filter`).
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
        },
      ],
      // `void promise` is the codebase's mark for a deliberate fire-and-forget (a flush or a
      // queue drain that handles its own errors). That is the rule's default; stated here so
      // the pattern does not depend on it.
      '@typescript-eslint/no-floating-promises': ['error', { ignoreVoid: true }],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // vitest types its asymmetric matchers (expect.any, expect.stringMatching,
      // expect.stringContaining) as returning `any`, by design, so every matcher inside an
      // expected object literal is an "unsafe assignment". The other no-unsafe-* rules stay
      // on in tests: an `any` that gets used (a member read, a call, an argument, a return)
      // is still reported.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      // Test regexes mirror the CLI's column-aligned output space for space
      // (/ 3\/1000  0%  1\.5\/s  ETA/); ` {2}` would hide the layout they check.
      'no-regex-spaces': 'off',
    },
  },
);
