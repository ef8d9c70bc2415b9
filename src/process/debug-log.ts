/**
 * The `debug` package's convention, without the dependency: `DEBUG=invagent:*` (or a comma- or
 * space-separated list of namespaces, `*` wildcards and `-excluded` ones) turns on diagnostic
 * lines on stderr for the matching namespaces. Off by default, and cheap when off.
 */
export type DebugLog = ((message: string) => void) & {enabled: boolean}

function patternToRegExp(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*?')
  return new RegExp(`^${escaped}$`)
}

/** Whether `namespace` is turned on by the DEBUG value given (the environment's by default). */
export function isDebugEnabled(namespace: string, setting = process.env.DEBUG ?? ''): boolean {
  let enabled = false
  for (const part of setting.split(/[\s,]+/).filter(Boolean)) {
    if (part.startsWith('-')) {
      if (patternToRegExp(part.slice(1)).test(namespace)) return false
    } else if (patternToRegExp(part).test(namespace)) {
      enabled = true
    }
  }
  return enabled
}

/** A logger for one namespace (e.g. `invagent:process`); DEBUG is read once, when it is created. */
export function createDebugLog(namespace: string): DebugLog {
  const enabled = isDebugEnabled(namespace)
  const log = ((message: string) => {
    if (enabled) process.stderr.write(`${new Date().toISOString()} ${namespace} ${message}\n`)
  }) as DebugLog
  log.enabled = enabled
  return log
}
