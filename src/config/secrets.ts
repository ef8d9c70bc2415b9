/**
 * Values substituted into the config file from `${ENV_VAR}` references. They are secrets by
 * construction (passwords, tokens), so every error message leaving a command is scrubbed of them.
 */
const secrets = new Set<string>()

/** Remembers values that must never be printed; short ones are ignored (they would mangle text). */
export function registerSecrets(values: Iterable<string>): void {
  for (const value of values) if (value.length >= 4) secrets.add(value)
}

/** The text with every registered secret replaced by ***. */
export function scrubSecrets(text: string): string {
  let scrubbed = text
  for (const secret of secrets) scrubbed = scrubbed.replaceAll(secret, '***')
  return scrubbed
}
