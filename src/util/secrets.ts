/**
 * Secrets taken from the environment (INVAGENT_API_KEY, INVAGENT_SCRUB_KEY, any *_TOKEN, *_SECRET,
 * *_PASSWORD …) must never appear in output or logs, even when a library echoes a flag's value in
 * an error. Text that leaves the process passes through redactSecrets.
 */
const SECRET_NAME = /(?:^|_)(?:API_?KEY|KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIALS?|AUTH)$/i

/** Shorter values would redact common words and digits; a real secret is longer. */
const MIN_SECRET_LENGTH = 6

export const SECRET_MARKER = '[redacted-secret]'

/** The values of the secret-looking variables of `env`, longest first (so one that contains another goes first). */
export function secretValues(env: NodeJS.ProcessEnv = process.env): string[] {
  const values = new Set<string>()
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && value.trim().length >= MIN_SECRET_LENGTH && SECRET_NAME.test(name)) values.add(value)
  }
  return [...values].sort((a, b) => b.length - a.length)
}

/** `text` with every secret value replaced by a marker. */
export function redactSecrets(text: string, secrets: readonly string[] = secretValues()): string {
  let result = text
  for (const secret of secrets) if (result.includes(secret)) result = result.replaceAll(secret, SECRET_MARKER)
  return result
}
