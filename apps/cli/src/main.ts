#!/usr/bin/env node
import { Command } from 'commander';
import { registerApiCommands } from './api-commands.js';
import { registerBackupCommands } from './backup-commands.js';
import { registerStateCommands } from './state-commands.js';
import { registerTokenCommands } from './token-commands.js';
import { reportAndExit } from './errors.js';

const program = new Command()
  .name('chango-backup')
  .description('Backup and restore of the Chango control plane (kms, iam, metadata)')
  .showHelpAfterError();

registerBackupCommands(program);
registerApiCommands(program);
registerStateCommands(program);
registerTokenCommands(program);

program.parseAsync(process.argv).catch(reportAndExit);
