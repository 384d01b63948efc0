export { MariaCluster, type MariaClusterInfo, type MariaNodeInfo } from '../../src/devcluster/mariadb.js';
