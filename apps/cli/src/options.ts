import { InvalidArgumentError } from 'commander';

/** Parses a non-negative whole number option, naming the option when it is not one. */
export function wholeNumber(name: string): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`${name} must be a whole number, got "${value}"`);
    return Number(value);
  };
}
