import { defineConfig } from 'vitest/config';

// Two projects: `unit` needs no servers; `integration` runs against the real
// PostgreSQL and MariaDB clusters that test/support/global-setup.ts starts once
// per run (and always stops). Integration files run one at a time because they
// share those clusters and the machine has 2 cores.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/support/global-setup.ts'],
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
