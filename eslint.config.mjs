// ESLint (flat config) for the page's modules and the Node scripts that drive Chromium in the tests and
// benchmarks: `make lint-js`, part of `make test`. ESLint and its configs are mobile_demo's npm devDependencies.
import {createRequire} from 'node:module';

const require = createRequire(new URL('./mobile_demo/package.json', import.meta.url));
const js = require('@eslint/js');
const globals = require('globals');

export default [
  {ignores: ['**/vendor/**', '**/node_modules/**', '.venv/**', 'runs/**']},
  js.configs.recommended,
  {
    files: ['mobile_demo/static/**/*.js'],
    languageOptions: {ecmaVersion: 2024, sourceType: 'module', globals: {...globals.browser, ...globals.worker}},
  },
  {
    files: ['tests/browser/**/*.mjs', 'tests/node/**/*.mjs', 'benchmarks/**/*.mjs'],
    languageOptions: {ecmaVersion: 2024, sourceType: 'module', globals: {...globals.node, ...globals.browser}},
  },
  {
    rules: {
      'max-len': ['error', {code: 140, ignoreUrls: true}],
      'no-unused-vars': ['error', {argsIgnorePattern: '^_', caughtErrors: 'none'}],
      eqeqeq: ['error', 'always'],
      'prefer-const': 'error',
      'no-var': 'error',
    },
  },
];
