// Helpers for the flat header list sent upstream: [name, value, name, value, ...], names lower case.

export function removeHeader(list: string[], name: string): void {
  for (let i = list.length - 2; i >= 0; i -= 2) {
    if (list[i] === name) list.splice(i, 2);
  }
}

export function setHeader(list: string[], name: string, value: string): void {
  removeHeader(list, name);
  list.push(name, value);
}

export function getHeader(list: readonly string[], name: string): string | undefined {
  for (let i = 0; i < list.length; i += 2) if (list[i] === name) return list[i + 1];
  return undefined;
}
