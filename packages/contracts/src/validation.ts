import type { z } from 'zod';

/** One problem with a request, naming the field (dotted path) it is about. */
export interface FieldError {
  field: string;
  message: string;
}

/** Turns zod's issues into field errors an operator can act on. */
export function fieldErrors(error: z.ZodError): FieldError[] {
  return error.issues.flatMap((issue): FieldError[] => {
    const path = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ field: path ? `${path}.${key}` : key, message: 'is not a known field' }));
    }
    if (issue.code === 'invalid_type') {
      // zod says "Invalid input: expected string, received undefined"; say it the way an operator reads it.
      const missing = /received undefined/.test(issue.message);
      // zod 4 reports 1.5 for an .int() as expected 'int': a whole number, in words.
      const expected = issue.expected === 'int' ? 'whole number' : issue.expected;
      return [{ field: path || '(body)', message: missing ? 'is required' : `must be ${article(expected)} ${expected}` }];
    }
    return [{ field: path || '(body)', message: issue.message }];
  });
}

function article(word: string): string {
  return /^[aeiou]/.test(word) ? 'an' : 'a';
}
