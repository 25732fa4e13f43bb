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
      // the same limit as ruff's line-length in pyproject.toml. Lines made long by a string or
      // a template literal (HTML and sentences) are let off until they are reflowed too.
      'max-len': ['warn', {
        code: 100, ignoreUrls: true, ignoreStrings: true, ignoreTemplateLiterals: true,
      }],
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
