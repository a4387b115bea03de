/**
 * Tables for the CLI's listings (`lorne ps`, `lorne cluster ps`): left-
 * aligned columns, the way `docker ps` prints them. Cells come from jobs
 * (commands, ids, errors), so control characters in them are shown as
 * escapes: a job cannot move the cursor, clear the screen or start a new
 * row in somebody's terminal.
 */

/** The table as text, one line per row, each line ending in a newline. */
export function formatTable(headers: string[], rows: string[][]): string {
  const shown = rows.map((row) => row.map(printable));
  const widths = headers.map((h, i) =>
    Math.max(h.length, ...shown.map((row) => (row[i] ?? "").length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, i) =>
        i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0),
      )
      .join("   ")
      .trimEnd();
  return [line(headers), ...shown.map(line)].map((l) => `${l}\n`).join("");
}

/** Prints formatTable's text to stdout. */
export function printTable(headers: string[], rows: string[][]): void {
  process.stdout.write(formatTable(headers, rows));
}

const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

// C0 controls, DEL and C1 controls (ESC, CSI and the like).
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

function printable(cell: string): string {
  return cell.replace(
    CONTROL,
    (c) => NAMED[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}
