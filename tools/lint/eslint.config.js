// typescript-eslint's recommended rules over the whole repository. Run from the repository root
// with `npm run lint` (this folder has its own node_modules: see package.json here).
import {fileURLToPath} from 'node:url'

import tseslint from 'typescript-eslint'

const root = fileURLToPath(new URL('../..', import.meta.url))

export default tseslint.config(
  {
    basePath: root,
    ignores: ['dist/**', 'node_modules/**', 'tools/lint/node_modules/**', 'coverage/**', 'bench/out/**'],
  },
  {
    basePath: root,
    files: ['**/*.ts', '**/*.js', '**/*.mjs'],
    extends: [...tseslint.configs.recommended],
    rules: {
      // `_name` marks a value taken only to be left out (destructuring a field away).
      '@typescript-eslint/no-unused-vars': [
        'error',
        {argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none'},
      ],
    },
  },
)
