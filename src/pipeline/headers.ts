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
