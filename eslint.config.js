// ESLint for the front end (web/js: no build step, plain ES modules in the browser).
// `npm run lint` or `make lint-js`; `make lint` runs it whenever npm ci has installed ESLint.

import js from '@eslint/js';
import globals from 'globals';

export default [
  js.configs.recommended,
  {
    files: ['web/js/**/*.js'],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      globals: globals.browser,
    },
  },
  {
    files: ['eslint.config.js'],
    languageOptions: { sourceType: 'module', globals: globals.node },
  },
  {
    rules: {
      // the same limit as ruff's line-length in pyproject.toml, strings and template literals
      // included: split a long one with + (never inside text or an attribute value, where a
      // line break would change what the page shows)
      'max-len': ['warn', { code: 100, ignoreUrls: true }],
      'no-unused-vars': ['warn', {
        args: 'after-used', argsIgnorePattern: '^_', ignoreRestSiblings: true,
      }],
      'no-shadow': 'warn',
      'no-var': 'warn',
      'prefer-const': 'warn',
      eqeqeq: ['warn', 'smart'],
      'no-implicit-globals': 'warn',
      'no-console': 'warn',
      'no-alert': 'warn',
      'no-eval': 'warn',
      'no-implied-eval': 'warn',
      'no-new-func': 'warn',
      'no-throw-literal': 'warn',
      'no-self-compare': 'warn',
      'no-template-curly-in-string': 'warn',
      'no-unneeded-ternary': 'warn',
      'no-useless-return': 'warn',
      'object-shorthand': 'warn',
    },
  },
];
