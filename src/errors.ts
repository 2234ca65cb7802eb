/**
 * The one error type the library throws for bad input (files, shapes, values,
 * flags). Its message names the problem; the CLI prints it on one line and
 * exits with code 1. Anything else that escapes is a bug and keeps its stack.
 */
export class DiffuseError extends Error {
  override readonly name = 'DiffuseError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
