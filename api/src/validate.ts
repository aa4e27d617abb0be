import type { z } from 'zod';
import { AppError } from '@decisum/shared';

/** Parses input with a schema; a failure is a 400 naming every bad field. */
export function parse<S extends z.ZodType>(schema: S, input: unknown, where: string): z.infer<S> {
  const r = schema.safeParse(input);
  if (r.success) { return r.data; }
  const fields = r.error.issues.map((i) => {
    const name = i.path.length ? i.path.join('.') : where;
    const keys = 'keys' in i && Array.isArray(i.keys) ? ` (${i.keys.join(', ')})` : '';
    return `${name}: ${i.message}${keys}`;
  });
  return failValidation(fields, r.error.issues.map((i) => i.path.join('.') || where));
}

function failValidation(messages: string[], fields: string[]): never {
  throw new AppError('VALIDATION', `invalid ${messages.join('; ')}`, {
    status: 400,
    details: { fields: [...new Set(fields)] },
  });
}
