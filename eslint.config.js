// A small rule set that catches real bugs, not style: promises nobody waits for or
// passes where a plain callback is expected, awaiting what is not a promise,
// switch cases that fall through, code that never runs. Type-aware (each file
// is checked with the tsconfig it is built with). `npm run lint`; `npm test` runs it.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', 'node_modules/**', 'apps/api/public/**', 'test-artifacts/**', 'bench/out/**', 'eslint.config.js'] },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.base],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // node:test's test() and describe() return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': ['error', { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] }] }],
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false, attributes: false } }],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unnecessary-type-assertion': 'error',
      // Rethrowing what was caught (unknown) as it is stays allowed; throwing a string or a literal does not.
      '@typescript-eslint/only-throw-error': ['error', { allowThrowingAny: true, allowThrowingUnknown: true }],
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingAny: true, allowThrowingUnknown: true }],
      'no-fallthrough': 'error',
      'no-unreachable': 'error',
      'no-self-compare': 'error',
      'no-dupe-keys': 'error',
      'no-duplicate-case': 'error',
      'use-isnan': 'error',
    },
  },
  // testkit/, bench/ and dev/ are type-checked with the tests (test/tsconfig.json), which the nearest tsconfig does not name.
  {
    files: ['testkit/**/*.ts', 'bench/**/*.ts', 'dev/**/*.ts'],
    languageOptions: { parserOptions: { projectService: false, project: ['./test/tsconfig.json'], tsconfigRootDir: import.meta.dirname } },
  },
);
