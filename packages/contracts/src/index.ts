export * from './backup-key.js';
export * from './destination.js';
export * from './jobs.js';
export * from './queues.js';
export * from './sealed-transport.js';
export * from './validation.js';
export * from './settings.js';
export * from './api-tokens.js';
