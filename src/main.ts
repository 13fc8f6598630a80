/**
 * Entry point (`npm start`, `npm run start:prod`). It checks the Node.js version first and only then loads the
 * server: static imports are evaluated before a module's body, so the server's modules (and their dependencies,
 * which need Node.js 22 or newer) are imported dynamically, after the check.
 */
import { exitUnlessSupportedNode } from './node-version.js';

exitUnlessSupportedNode();
await import('./start.js');
