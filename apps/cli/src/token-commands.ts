import { newToken, ROLES, type Role } from '@chango/security';
import { Option, type Command } from 'commander';

/** `chango-backup token new`: a fresh api token and the tokens-file line that admits it. */
export function registerTokenCommands(program: Command): void {
  const token = program.command('token').description('api bearer tokens');
  token
    .command('new')
    .description('print a new random token and the line to append to CHANGO_API_TOKENS_FILE (only its SHA-256 is stored)')
    .requiredOption('--name <name>', 'who or what uses the token (shown in logs)')
    .addOption(new Option('--role <role>', 'admin (everything) or viewer (reads only)').choices(ROLES).makeOptionMandatory())
    .option('--json', 'print {"token": …, "line": …}')
    .action((options: { name: string; role: Role; json?: boolean }) => {
      const { token: value, line } = newToken(options.name, options.role);
      if (options.json) {
        console.log(JSON.stringify({ token: value, line }));
        return;
      }
      console.log(`token (shown once, keep it secret): ${value}`);
      console.log(`tokens file line:                   ${line}`);
    });
}
