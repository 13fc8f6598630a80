/**
 * Which Node.js the server needs, checked before anything else is loaded. It imports nothing but Node's own
 * modules, so an entry can run it first and load the rest only when the check passes: on an older Node a
 * dependency would otherwise fail while loading, with a stack trace that names neither version.
 */

/** The oldest Node.js major line the code runs on; package.json's `engines.node`, `.node-version` and `.nvmrc` agree. */
export const REQUIRED_NODE_MAJOR = 24;

/**
 * What is wrong with running on Node.js `version`, in one line, or undefined when it is new enough.
 *
 * @param version a version as `process.versions.node` gives it (`20.20.2`); defaults to this process's.
 */
export function nodeVersionProblem(version: string = process.versions.node): string | undefined {
  const major = Number.parseInt(version, 10);
  if (major >= REQUIRED_NODE_MAJOR) return undefined;
  return (
    `task-tracker needs Node.js ${REQUIRED_NODE_MAJOR} or newer, but this is Node.js ${version} (${process.execPath}): ` +
    `run it through npm (npm start, npm run start:prod, npx task-tracker), which uses the Node.js ${REQUIRED_NODE_MAJOR} ` +
    `that npm install put in node_modules/.bin, or install Node.js ${REQUIRED_NODE_MAJOR}`
  );
}

/** Writes {@link nodeVersionProblem}'s line to stderr and exits 1 when this Node.js is too old; else returns. */
export function exitUnlessSupportedNode(): void {
  const problem = nodeVersionProblem();
  if (problem === undefined) return;
  process.stderr.write(`${problem}\n`);
  process.exit(1);
}
