/** Lays out rows as aligned columns (kubectl style): two spaces apart, the last column unpadded. */
export function layoutTable(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  // reduce, not Math.max(...rows): tens of thousands of rows would exceed the argument limit.
  const widths = header.map((h, i) => rows.reduce((width, r) => Math.max(width, (r[i] ?? '').length), h.length));
  return [header, ...rows].map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}
