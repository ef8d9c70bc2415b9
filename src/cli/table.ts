/** A plain-text table: columns sized to their widest cell, long cells cut with an ellipsis. */
export function renderTable(headers: string[], rows: string[][], maxWidth = 60): string {
  const cut = (cell: string) => (cell.length > maxWidth ? cell.slice(0, maxWidth - 1) + '…' : cell)
  const cells = [headers, ...rows].map((row) => row.map((cell) => cut(cell)))
  const widths = headers.map((_, column) => Math.max(...cells.map((row) => (row[column] ?? '').length)))
  const line = (row: string[]) =>
    row
      .map((cell, column) => cell.padEnd(widths[column]))
      .join('  ')
      .trimEnd()
  return [line(cells[0]), widths.map((width) => '─'.repeat(width)).join('  '), ...cells.slice(1).map(line)].join('\n')
}
