#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command();
program
  .name('switchyard')
  .description('Read/write-splitting proxy for PostgreSQL and MySQL/MariaDB')
  .version(pkg.version, '-V, --version')
  .showHelpAfterError();

function configPath(opt: string | undefined): string {
  const path = opt ?? process.env.SWITCHYARD_CONFIG;
  if (!path) {
    process.stderr.write('switchyard: no config file: pass -c FILE or set SWITCHYARD_CONFIG\n');
    process.exit(1);
  }
  return path;
}

program
  .command('check')
  .description('validate a config file: prints "config OK" (exit 0) or one line per problem (exit 1)')
  .option('-c, --config <file>', 'config file (default: $SWITCHYARD_CONFIG)')
  .action(async (opts: { config?: string }) => {
    const { runCheck } = await import('./config/check.js');
    const code = await runCheck(configPath(opts.config), process.env, (line) => process.stdout.write(`${line}\n`));
    process.exitCode = code;
  });

program
  .command('classify')
  .description('print the routing class (read | write) of each SQL statement')
  .addOption(new Option('--dialect <dialect>', 'SQL dialect').choices(['postgres', 'mysql']).default('postgres'))
  .option('--json', 'one JSON object per statement: {"sql","class","reason"}')
  .option('--write-function <name...>', 'extra write functions (as routing.write_functions)')
  .option('--read-function <name...>', 'read-only user functions (as routing.read_functions)')
  .argument('<sql...>', 'statements (each argument is classified as one text)')
  .action(async (sql: string[], opts: { dialect: 'postgres' | 'mysql'; json?: boolean; writeFunction?: string[]; readFunction?: string[] }) => {
    const { classify } = await import('./sql/index.js');
    for (const text of sql) {
      const c = classify(text, { dialect: opts.dialect, writeFunctions: opts.writeFunction, readFunctions: opts.readFunction });
      if (opts.json) process.stdout.write(`${JSON.stringify({ sql: text, class: c.class, reason: c.reason })}\n`);
      else process.stdout.write(`${c.class}\t${c.reason}\t${text}\n`);
    }
  });

program
  .command('start')
  .description('run the proxy')
  .option('-c, --config <file>', 'config file (default: $SWITCHYARD_CONFIG)')
  .option('--workers <n>', 'worker processes: a number or "auto" (one per core)', '1')
  .option('--no-watch', 'do not reload when the config file changes (SIGHUP and POST /reload still do)')
  .action(async (opts: { config?: string; workers: string; watch: boolean }) => {
    const { runServer } = await import('./server.js');
    await runServer({ configPath: configPath(opts.config), workers: opts.workers, watch: opts.watch });
  });

program
  .command('demo')
  .description('start a local primary + 2 replicas and the proxy in front of them; Ctrl-C stops everything')
  .option('--port <port>', 'proxy port for the PostgreSQL cluster', '6432')
  .option('--mysql-port <port>', 'proxy port for the MariaDB cluster (when MariaDB is installed)', '6033')
  .option('--admin-port <port>', 'admin HTTP port', '9190')
  .action(async (opts: { port: string; mysqlPort: string; adminPort: string }) => {
    const { runDemo } = await import('./demo/demo.js');
    await runDemo({ port: Number(opts.port), mysqlPort: Number(opts.mysqlPort), adminPort: Number(opts.adminPort) });
  });

program.parseAsync(process.argv).catch((e: unknown) => {
  process.stderr.write(`switchyard: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
