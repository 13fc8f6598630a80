// Style sheets the playground imports for their side effect (esbuild bundles them into playground/dist); TypeScript
// 6 checks that such an import resolves to a module.
declare module '*.css';
