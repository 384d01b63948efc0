/**
 * Free TCP ports on 127.0.0.1 for tests: bind port 0, read it, close.
 * The same allocator the clusters use, so a port handed to a test never
 * collides with one handed to a server in this process.
 */
export { freePort } from '../../src/devcluster/proc.js';
