/** Prints rows as left-aligned columns, the way `docker ps` does. */
export function printTable(headers: string[], rows: string[][]): void {
  const widths = headers.map((h, i) =>
    Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, i) =>
        i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0),
      )
      .join("   ")
      .trimEnd();
  const out = [line(headers), ...rows.map(line)].join("\n");
  process.stdout.write(`${out}\n`);
}
