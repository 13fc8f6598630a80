/**
 * Bundles the playground (GraphiQL and React) into playground/dist with esbuild. Runs at install time
 * (`postinstall`), so `npm start` needs no build step and the page needs no CDN. Without the dev dependencies
 * (`npm ci --omit=dev`) it skips, and the server answers /playground with a note saying how to build it.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outdir = path.join(root, 'playground', 'dist');

if (!existsSync(path.join(root, 'node_modules', 'graphiql'))) {
  process.stdout.write('playground: graphiql is not installed (production install?); skipping the bundle\n');
  process.exit(0);
}

const { build } = await import('esbuild');
const started = Date.now();
await mkdir(outdir, { recursive: true });
const result = await build({
  entryPoints: [path.join(root, 'playground', 'src', 'main.tsx')],
  bundle: true,
  minify: true,
  format: 'esm',
  target: 'es2022',
  jsx: 'automatic',
  outdir,
  entryNames: 'playground',
  define: { 'process.env.NODE_ENV': '"production"' },
  loader: { '.woff': 'file', '.woff2': 'file', '.ttf': 'file', '.svg': 'file' },
  metafile: true,
  logLevel: 'warning',
});
await writeFile(path.join(outdir, 'meta.json'), JSON.stringify({ builtAt: new Date().toISOString(), files: Object.keys(result.metafile.outputs) }));
process.stdout.write(`playground: bundled in ${Date.now() - started} ms into ${path.relative(root, outdir)}\n`);
