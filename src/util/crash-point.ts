/**
 * Named points where a durability test may kill this process outright (SIGKILL: no cleanup, no
 * rollback, no flush), to show that a crash there leaves nothing half-applied and that a rerun
 * applies each write exactly once. Set INVAGENT_CRASH_AT to the point's name; unset, this is a
 * no-op. Points: `apply-write` (inside the apply unit, after its first write) and `apply-commit`
 * (after the inventory committed, before the state store records it).
 */
export function crashPoint(name: 'apply-write' | 'apply-commit'): void {
  if (process.env.INVAGENT_CRASH_AT === name) process.kill(process.pid, 'SIGKILL')
}
