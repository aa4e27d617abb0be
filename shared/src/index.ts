export * from './config';
export * from './errors';
export * from './job';
export * from './location';
export * from './logger';
export * from './storage';
