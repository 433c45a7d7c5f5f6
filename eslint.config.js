// Lint: typescript-eslint with type information, for the mistakes the compiler
// lets through in async code (a promise nobody awaits, a promise passed where a
// callback's result is ignored) and for `any` leaking into typed code.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'tmp/**', 'node_modules/**', 'test/package/app/**', '**/*.js'] },
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.base, tseslint.configs.eslintRecommended],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/only-throw-error': 'error',
      '@typescript-eslint/prefer-promise-reject-errors': 'error',
      '@typescript-eslint/no-base-to-string': 'error',
      '@typescript-eslint/unbound-method': 'error',
      'no-unused-vars': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    // The builder's type-level `any`: `Task<I = any, O = any>` and `Workflow`
    // stand for "a task or workflow of some input and output" (a typed one
    // must be assignable to them, which `unknown` would forbid through the
    // handler's parameter), and the builder's conditional types infer step
    // outputs through `any` placeholders. No value is typed `any` there.
    files: ['src/workflow/builder.ts', 'src/workflow/task.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
