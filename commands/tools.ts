import {InvagentCommand} from '../src/cli/base-command.js'
import {renderTable} from '../src/cli/table.js'
import {toolCatalogue, type ToolCatalogueEntry} from '../src/tools/json-schema.js'

export default class Tools extends InvagentCommand {
  static override summary = 'Show the typed tool catalogue the agent and the model use.'
  static override description =
    'Name, effect (read, write, terminal), description and the JSON Schema of the arguments and the result of every tool, derived from the one zod definition in src/tools.'
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json']

  async run(): Promise<{tools: ToolCatalogueEntry[]}> {
    await this.parse(Tools)
    const tools = toolCatalogue()
    const rows = tools.map((tool) => {
      const properties = Object.keys((tool.args.properties as Record<string, unknown>) ?? {})
      const required = new Set((tool.args.required as string[]) ?? [])
      return [
        tool.name,
        tool.effect,
        properties.map((name) => (required.has(name) ? name : `${name}?`)).join(', '),
        tool.description,
      ]
    })
    this.say(renderTable(['tool', 'effect', 'args', 'description'], rows, 90))
    return {tools}
  }
}
