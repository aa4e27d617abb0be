import path from 'node:path';

/** The reference sample (../shared/samples/data.csv, copied in) and the sums DESIGN.md gives for it. */
export const SAMPLE = path.join(__dirname, '..', 'fixtures', 'sample.csv');
export const SAMPLE_ROWS = 168;
export const SAMPLE_SUMS = [
  { name: 'col0', index: 1, sum: '87.231379072549653118', count: 168 },
  { name: 'col10', index: 11, sum: '85.5182181544556908975', count: 168 },
  { name: 'col20', index: 21, sum: '83.5099565716517882532', count: 168 },
  { name: 'col30', index: 31, sum: '89.8093183867067968988', count: 168 },
  { name: 'col40', index: 41, sum: '84.058402235531208060', count: 168 },
];
