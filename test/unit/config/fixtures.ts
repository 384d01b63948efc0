/**
 * A valid minimal config shared by the config tests. Line numbers asserted in
 * the tests refer to this layout (line 1 is `clusters:`).
 */
export const minimalYaml = `clusters:
  - name: main
    protocol: postgres
    listen: 127.0.0.1:6432
    nodes:
      - { name: pg1, host: 127.0.0.1, port: 5432 }
      - { name: pg2, host: 127.0.0.1, port: 5433 }
    users:
      - { name: app, password: secret }
`;

export const repoRoot = new URL('../../../', import.meta.url);
