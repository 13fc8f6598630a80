// Lint: typescript-eslint's recommended rules with type information, on our own code only.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'migrations/.snapshot.json', 'scratch/**', '.data/**', 'temp/**', 'coverage/**', '**/generated/**', 'playground/dist/**', 'test/artifacts/**', 'dist/**', 'packages/*/dist/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/require-await': 'off',
    },
  },
  { files: ['eslint.config.js', 'bin/*.mjs'], ...tseslint.configs.disableTypeChecked },
);
