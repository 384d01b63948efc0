// The tests use the same local clusters as `switchyard demo` (src/devcluster).
export { PgCluster, type PgClusterInfo, type PgNodeInfo } from '../../src/devcluster/pg.js';
