export * from './types';
export * from './backoff';
export * from './local';
export * from './s3';
export * from './s3-client';
export * from './router';
export * from './create';
