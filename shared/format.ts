// Human-readable numbers for messages and reports; no dependencies, so the CLI can load it
// without pulling in the archive code.

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** "1 file", "2,345 files". */
export function plural(count: number, singular: string, pluralForm = `${singular}s`): string {
  return `${groupThousands(count)} ${count === 1 ? singular : pluralForm}`;
}

/** 1234567 -> "1,234,567" (toLocaleString would load ICU's locale data: ~12 ms on a CLI's first call). */
export function groupThousands(count: number): string {
  const [whole, fraction] = String(count).split('.');
  const sign = whole!.startsWith('-') ? '-' : '';
  const digits = sign === '' ? whole! : whole!.slice(1);
  const grouped = digits.replace(/\B(?=(\d{3})+$)/g, ',');
  return `${sign}${grouped}${fraction === undefined ? '' : `.${fraction}`}`;
}
