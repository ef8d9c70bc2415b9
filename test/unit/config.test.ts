import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {auditSettings} from '../../src/config/audit-settings.js'
import {loadConfig, parseConfig} from '../../src/config/load-config.js'
import {registerSecrets, scrubSecrets} from '../../src/config/secrets.js'
import {DEFAULT_POLICY} from '../../src/agent/policy.js'
import {temporaryDirectory} from '../helpers/cli.js'

const FILE = join('/work', 'invagent.yaml')

function problem(text: string, env: NodeJS.ProcessEnv = {}): string {
  try {
    parseConfig(text, FILE, env, '/work')
  } catch (error) {
    return (error as Error).message
  }
  throw new Error('expected the config to be refused')
}

describe('invagent.yaml', () => {
  it('reads every section', () => {
    const text = [
      'inventory: postgres://app:${PGPASSWORD}@db.example:5432/inv',
      'engine:',
      '  name: server',
      '  url: http://127.0.0.1:8080',
      '  max-tokens: 128',
      '  api-key: ${LLM_KEY}',
      'policy:',
      '  profile: full',
      '  max-writes-per-run: 50',
      'approval:',
      '  above: 200',
      '  yes: true',
      '',
    ].join('\n')
    const loaded = parseConfig(text, FILE, {PGPASSWORD: 'p@ss/word', LLM_KEY: 'sk-123'}, '/work')
    expect(loaded.config).toEqual({
      inventory: 'postgres://app:p%40ss%2Fword@db.example:5432/inv',
      engine: {name: 'server', url: 'http://127.0.0.1:8080', 'max-tokens': 128, 'api-key': 'sk-123'},
      policy: {profile: 'full', 'max-writes-per-run': 50},
      approval: {above: 200, yes: true},
    })
    expect(loaded.secrets).toEqual(expect.arrayContaining(['p@ss/word', 'sk-123']))
  })

  it('names an unknown key at file:line:col with the nearest known one', () => {
    expect(problem('engine:\n  nmae: rules\n')).toBe(
      'invagent.yaml:2:3: unknown key "nmae" in engine — did you mean "name"?',
    )
    expect(problem('inventroy: inv.db\n')).toBe(
      'invagent.yaml:1:1: unknown key "inventroy" — did you mean "inventory"?',
    )
    expect(problem('policy:\n  zzz: 1\n')).toContain(
      'unknown key "zzz" in policy (known: profile, max-writes-per-finding, max-writes-per-run, max-impact)',
    )
  })

  it("reports a wrong value at the value's position, and every problem at once", () => {
    expect(problem('engine:\n  threads: two\n')).toMatch(/^invagent\.yaml:2:12: engine\.threads: /)
    const message = problem('policy:\n  profile: everything\napproval:\n  above: -1\n')
    expect(message).toMatch(/^2 problems in invagent\.yaml:/)
    expect(message).toContain('invagent.yaml:2:12: policy.profile:')
    expect(message).toContain('invagent.yaml:4:10: approval.above:')
  })

  it('reports YAML syntax errors at their position', () => {
    expect(problem('engine:\n  name: [rules\n')).toMatch(/^invagent\.yaml:\d+:\d+: /)
    expect(problem('inventory: a\ninventory: b\n')).toMatch(/^invagent\.yaml:2:1: .*unique/i)
  })

  it('refuses a password or an api key written in the file, without repeating it', () => {
    const message = problem('inventory: postgres://app:hunter2@db/inv\n')
    expect(message).toContain(
      'invagent.yaml:1:12: inventory: the password is written in the file; write it as ${ENV_VAR}',
    )
    expect(message).not.toContain('hunter2')
    expect(problem('engine:\n  api-key: sk-live-123\n')).toBe(
      'invagent.yaml:2:12: engine.api-key is a secret: ' +
        'write it as ${ENV_VAR} and set the variable, never the value itself',
    )
    expect(problem('inventory: https://erp.example/api?token=abc\n')).toContain(
      'the token parameter is written in the file',
    )
  })

  it('says which referenced variable is not set, and never prints a value that is', () => {
    expect(problem('inventory: postgres://app:${PGPASSWORD}@db/inv\n')).toBe(
      'invagent.yaml:1:12: ${PGPASSWORD} is not set in the environment',
    )
    const message = problem('inventory: postgres://app:${PGPASSWORD}@db/inv\nengine:\n  threads: ${THREADS}\n', {
      PGPASSWORD: 'hunter2',
      THREADS: 'many',
    })
    expect(message).toContain('engine.threads')
    expect(message).not.toContain('hunter2')
  })

  it('is optional in the working directory, and must exist when named with --config', () => {
    const directory = temporaryDirectory()
    expect(loadConfig({cwd: directory})).toBeUndefined()
    writeFileSync(join(directory, 'invagent.yaml'), 'inventory: inv.db\n')
    expect(loadConfig({cwd: directory})?.config).toEqual({inventory: 'inv.db'})
    mkdirSync(join(directory, 'conf'))
    expect(() => loadConfig({cwd: directory, file: 'conf/other.yaml'})).toThrow(
      'config file not found: conf/other.yaml',
    )
    writeFileSync(join(directory, 'conf', 'other.yaml'), '# nothing set\n')
    expect(loadConfig({cwd: directory, file: 'conf/other.yaml'})?.config).toEqual({})
  })
})

describe('secrets substituted from the environment', () => {
  it('are scrubbed from messages once registered', () => {
    const loaded = parseConfig('engine:\n  url: http://h/?key=${LLM_KEY}\n', FILE, {LLM_KEY: 'sk-live-9f8e'}, '/work')
    expect(loaded.config.engine?.url).toBe('http://h/?key=sk-live-9f8e')
    registerSecrets(loaded.secrets)
    expect(scrubSecrets('request to http://h/?key=sk-live-9f8e failed')).toBe('request to http://h/?key=*** failed')
  })
})

describe('audit settings: flag, else config file, else default', () => {
  it('lets a flag win over the file and the file over the default', () => {
    const config = {
      engine: {name: 'server' as const, url: 'http://x', 'max-tokens': 64},
      policy: {profile: 'full' as const},
      approval: {above: 10},
    }
    const fromFile = auditSettings({}, config)
    expect(fromFile.engine).toMatchObject({engine: 'server', url: 'http://x', maxTokens: 64})
    expect(fromFile.policy).toEqual({...DEFAULT_POLICY, profile: 'full', approveAbove: 10})
    expect(fromFile.yes).toBe(false)
    const fromFlags = auditSettings(
      {engine: 'rules', 'max-tokens': 32, profile: 'observe', 'approve-above': 0, yes: true},
      config,
    )
    expect(fromFlags.engine).toMatchObject({engine: 'rules', maxTokens: 32})
    expect(fromFlags.policy).toMatchObject({profile: 'observe', approveAbove: 0})
    expect(fromFlags.yes).toBe(true)
    expect(auditSettings({}).engine).toMatchObject({engine: 'rules', maxTokens: 256})
    expect(auditSettings({}).policy).toEqual(DEFAULT_POLICY)
  })
})
