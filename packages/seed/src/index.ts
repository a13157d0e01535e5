export { seedState, type SeedOptions, type SeedSummary } from './seed.js';
